// A payment provider's (and an SMS and push provider's) HTTP API: the outside world the flows talk to.
//
// It speaks the shape of a real provider: Idempotency-Key on every write (the same key and
// body return the first answer, replayed; the same key with another body is refused with
// 409), card declines as 402 with an error code, and faults tests can switch on: 5xx answers
// and slow answers (timeouts), or either at random ("mixed"), at a rate or for a count of
// requests, and for a time (for_s: the faults end by themselves after it). Every write is appended
// to a journal before it is answered and the journal is replayed at start, so a restart (or
// a SIGKILL) keeps every payment and idempotency record. Faults live in memory only.
//
// As at real providers, an idempotency key is remembered for a day (-key-ttl), and so is a
// sent message; payments are kept. Expired records leave memory every minute, and the journal
// is rewritten without them at start (when it holds more than what is live) and whenever it
// holds more than twice what is live, so neither grows with the stand-in's age.
//
// It is written in Go so that, on a machine the flows share with it, the provider's own cost
// stays small next to theirs: a real provider does not run on our cores at all.
//
// Cards: tok_visa (and any other token) is approved; tok_decline is declined;
// tok_insufficient is declined for insufficient funds.
//
// API (amounts in minor units):
//
//	POST /v1/payments                {amount, currency, token, order_id}  -> 201 payment | 402
//	POST /v1/payments/{id}/capture   {}                                   -> 200 payment | 409
//	POST /v1/payments/{id}/void      {}                                   -> 200 payment | 409
//	POST /v1/payments/{id}/refunds   {amount}                             -> 201 refund  | 409
//	GET  /v1/payments/{id}                                                -> 200 payment
//	POST /v1/messages                {channel: sms|push, to, body}        -> 201 message | 422 (SMS to +1555...)
//	GET  /_admin/messages                                                 -> every message sent
//	GET  /_admin/stats                                                    -> counts per order
//	PUT  /_admin/faults              {mode: "none"|"error"|"slow"|"mixed", rate: 0..1, delay_s, count, for_s}
//	GET  /_admin/faults                                                   -> the fault switch now
//	GET  /healthz
//
// Run: gateway -listen 127.0.0.1:18080 -journal .stack/data/gateway/journal.jsonl [-key-ttl 24h]
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

const unreachable = "+1555" // SMS numbers with this prefix are refused as unreachable
const maxBody = 64 << 10

var declines = map[string]string{"tok_decline": "card_declined", "tok_insufficient": "insufficient_funds"}

type Payment struct {
	ID       string `json:"id"`
	OrderID  string `json:"order_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	State    string `json:"state"`
	Captured int64  `json:"captured"`
	Refunded int64  `json:"refunded"`
}

type Message struct {
	ID      string    `json:"id"`
	Channel string    `json:"channel"`
	To      string    `json:"to"`
	Body    string    `json:"body"`
	At      time.Time `json:"at"`
}

// answer is what an idempotent write returned the first time, and when.
type answer struct {
	Fingerprint string          `json:"fingerprint"`
	Status      int             `json:"status"`
	Body        json.RawMessage `json:"body"`
	At          time.Time       `json:"at"`
}

// entry is one journal line: the answer under its key and the state it left behind.
type entry struct {
	Key     string   `json:"key"`
	Answer  answer   `json:"answer"`
	Payment *Payment `json:"payment,omitempty"`
	Message *Message `json:"message,omitempty"`
}

type faults struct {
	Mode   string    `json:"mode"`
	Rate   float64   `json:"rate"`
	DelayS float64   `json:"delay_s"`
	Count  int       `json:"count"`
	Until  time.Time `json:"until,omitzero"` // the faults end at this time (zero: when switched off)
}

type provider struct {
	mu       sync.Mutex
	answers  map[string]answer
	payments map[string]*Payment
	messages []Message
	faults   faults
	path     string
	keyTTL   time.Duration
	journal  *os.File
	out      *bufio.Writer
	lines    int // lines in the journal file
}

func open(path string, keyTTL time.Duration) (*provider, error) {
	p := &provider{
		answers: map[string]answer{}, payments: map[string]*Payment{}, faults: faults{Mode: "none", DelayS: 5},
		path: path, keyTTL: keyTTL,
	}
	loaded := time.Now().UTC()
	if f, err := os.Open(path); err == nil {
		lines := bufio.NewScanner(f)
		lines.Buffer(make([]byte, 1<<20), 1<<20)
		for lines.Scan() {
			var e entry
			if err := json.Unmarshal(lines.Bytes(), &e); err != nil {
				break // a torn last line from a crash mid-write: everything before it stands
			}
			if e.Answer.At.IsZero() { // journals from before records had a time: their day starts now
				e.Answer.At = loaded
			}
			if e.Message != nil && e.Message.At.IsZero() {
				e.Message.At = loaded
			}
			p.apply(e)
			p.lines++
		}
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	p.expire(loaded)
	if p.lines > p.live() { // something expired or was overwritten: rewrite the journal without it
		if err := p.compact(); err != nil {
			return nil, err
		}
		return p, nil
	}
	journal, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p.journal, p.out = journal, bufio.NewWriter(journal)
	return p, nil
}

// expire forgets idempotency records and messages older than the key TTL; payments stay.
func (p *provider) expire(now time.Time) {
	cutoff := now.Add(-p.keyTTL)
	for key, seen := range p.answers {
		if seen.At.Before(cutoff) {
			delete(p.answers, key)
		}
	}
	kept := p.messages[:0]
	for _, message := range p.messages {
		if !message.At.Before(cutoff) {
			kept = append(kept, message)
		}
	}
	p.messages = kept
}

// live is how many journal lines the current state needs.
func (p *provider) live() int {
	return len(p.answers) + len(p.payments) + len(p.messages)
}

// compact rewrites the journal with what is live (written aside, synced, then renamed over it).
func (p *provider) compact() error {
	if p.out != nil {
		if err := p.out.Flush(); err != nil {
			return err
		}
		p.journal.Close()
	}
	aside := p.path + ".compacting"
	f, err := os.Create(aside)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(f)
	written := 0
	put := func(e entry) {
		line, _ := json.Marshal(e)
		out.Write(line)
		out.WriteByte('\n')
		written++
	}
	for key, seen := range p.answers {
		put(entry{Key: key, Answer: seen})
	}
	for _, payment := range p.payments {
		put(entry{Payment: payment})
	}
	for i := range p.messages {
		put(entry{Message: &p.messages[i]})
	}
	if err := out.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if err := os.Rename(aside, p.path); err != nil {
		return err
	}
	journal, err := os.OpenFile(p.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.journal, p.out, p.lines = journal, bufio.NewWriter(journal), written
	return nil
}

// tidy runs every interval: expired records leave memory, and a journal grown past twice the
// live state (plus some slack) is compacted.
func (p *provider) tidy(interval time.Duration) {
	for now := range time.Tick(interval) {
		p.mu.Lock()
		p.expire(now.UTC())
		if p.lines > 2*p.live()+1000 {
			if err := p.compact(); err != nil {
				log.Fatalf("gateway: cannot compact the journal %s: %v", p.path, err)
			}
		}
		p.mu.Unlock()
	}
}

func (p *provider) apply(e entry) {
	if e.Key != "" { // lines a compaction wrote for payments and messages carry no key
		p.answers[e.Key] = e.Answer
	}
	if e.Payment != nil {
		copied := *e.Payment
		p.payments[copied.ID] = &copied
	}
	if e.Message != nil {
		p.messages = append(p.messages, *e.Message)
	}
}

// record journals the entry (written through to the OS before the client hears the answer), then applies it.
func (p *provider) record(e entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	p.out.Write(line)
	p.out.WriteByte('\n')
	if err := p.out.Flush(); err != nil {
		return err
	}
	p.lines++
	p.apply(e)
	return nil
}

func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	data, _ := json.Marshal(body)
	writeRaw(w, status, data)
}

func writeRaw(w http.ResponseWriter, status int, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(data)
}

func problem(w http.ResponseWriter, status int, title, description string) {
	writeJSON(w, status, map[string]string{"title": title, "description": description})
}

func failure(code, message string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": message}}
}

// inject applies the fault switch to one request; true when it already answered.
func (p *provider) inject(w http.ResponseWriter) bool {
	p.mu.Lock()
	if !p.faults.Until.IsZero() && time.Now().After(p.faults.Until) {
		p.faults = faults{Mode: "none", DelayS: 5}
	}
	f := p.faults
	if f.Mode == "none" {
		p.mu.Unlock()
		return false
	}
	if f.Count > 0 {
		p.faults.Count--
		if p.faults.Count == 0 && f.Rate == 0 {
			p.faults.Mode = "none"
		}
	} else if mathrand.Float64() >= f.Rate {
		p.mu.Unlock()
		return false
	}
	p.mu.Unlock()
	if f.Mode == "mixed" {
		f.Mode = "error"
		if mathrand.IntN(2) == 0 {
			f.Mode = "slow"
		}
	}
	if f.Mode == "slow" {
		time.Sleep(time.Duration(f.DelayS * float64(time.Second)))
		return false
	}
	problem(w, http.StatusServiceUnavailable, "injected fault", "the gateway is having a bad day")
	return true
}

// operation decides one write from its body; it runs under the lock and returns the answer and the state it leaves.
type operation func(p *provider, body map[string]any, target string) (int, any, *Payment, *Message)

// write is the one idempotent path every write takes.
func (p *provider) write(w http.ResponseWriter, r *http.Request, name string, op operation, target string) {
	if p.inject(w) {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > 255 {
		problem(w, http.StatusBadRequest, "missing Idempotency-Key", "every write needs one")
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, "body too large", err.Error())
		return
	}
	body := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		decoder := json.NewDecoder(bytes.NewReader(raw))
		decoder.UseNumber()
		if err := decoder.Decode(&body); err != nil {
			problem(w, http.StatusBadRequest, "body must be a JSON object", err.Error())
			return
		}
	}
	canonical, _ := json.Marshal([]any{name, target, body}) // map keys come out sorted
	sum := sha256.Sum256(canonical)
	fingerprint := hex.EncodeToString(sum[:])

	p.mu.Lock()
	defer p.mu.Unlock()
	if seen, ok := p.answers[key]; ok {
		if seen.Fingerprint != fingerprint {
			problem(w, http.StatusConflict, "idempotency key reused with a different request", "")
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeRaw(w, seen.Status, seen.Body)
		return
	}
	status, result, payment, message := op(p, body, target)
	data, _ := json.Marshal(result)
	now := time.Now().UTC()
	if message != nil {
		message.At = now
	}
	if err := p.record(entry{key, answer{fingerprint, status, data, now}, payment, message}); err != nil {
		problem(w, http.StatusInternalServerError, "journal write failed", err.Error())
		return
	}
	writeRaw(w, status, data)
}

// positive reads a JSON number that is a whole amount above zero.
func positive(value any) (int64, bool) {
	number, ok := value.(json.Number)
	if !ok {
		return 0, false
	}
	amount, err := number.Int64()
	return amount, err == nil && amount > 0
}

func authorize(p *provider, body map[string]any, _ string) (int, any, *Payment, *Message) {
	amount, ok := positive(body["amount"])
	currency, okCurrency := body["currency"].(string)
	token, okToken := body["token"].(string)
	if !ok || !okCurrency || !okToken {
		return 400, failure("invalid_request", "amount, currency and token are required"), nil, nil
	}
	if code, declined := declines[token]; declined {
		return 402, failure(code, "the card was declined"), nil, nil
	}
	orderID, _ := body["order_id"].(string)
	payment := &Payment{ID: newID("pay_"), OrderID: orderID, Amount: amount, Currency: currency, State: "authorized"}
	return 201, payment, payment, nil
}

func move(allowed, to string) operation {
	return func(p *provider, _ map[string]any, id string) (int, any, *Payment, *Message) {
		current, ok := p.payments[id]
		if !ok {
			return 404, failure("no_such_payment", "no such payment"), nil, nil
		}
		if current.State == to {
			return 200, current, nil, nil
		}
		if current.State != allowed {
			return 409, failure("invalid_state", "payment is "+current.State), nil, nil
		}
		changed := *current
		changed.State = to
		if to == "captured" {
			changed.Captured = changed.Amount
		}
		return 200, &changed, &changed, nil
	}
}

func refund(p *provider, body map[string]any, id string) (int, any, *Payment, *Message) {
	current, ok := p.payments[id]
	if !ok {
		return 404, failure("no_such_payment", "no such payment"), nil, nil
	}
	amount, ok := positive(body["amount"])
	if !ok {
		return 400, failure("invalid_request", "amount must be a positive integer"), nil, nil
	}
	if (current.State != "captured" && current.State != "refunded") || current.Refunded+amount > current.Captured {
		return 409, failure("invalid_state", "nothing left to refund"), nil, nil
	}
	changed := *current
	changed.Refunded += amount
	changed.State = "refunded"
	return 201, map[string]any{"id": newID("re_"), "payment": &changed, "amount": amount}, &changed, nil
}

func sendMessage(_ *provider, body map[string]any, _ string) (int, any, *Payment, *Message) {
	channel, _ := body["channel"].(string)
	to := fmt.Sprint(body["to"])
	if body["to"] == nil {
		to = ""
	}
	text, okText := body["body"].(string)
	if (channel != "sms" && channel != "push") || to == "" || !okText {
		return 400, map[string]string{"error": "invalid_request", "message": "channel (sms|push), to and body are required"}, nil, nil
	}
	if channel == "sms" && strings.HasPrefix(to, unreachable) {
		return 422, map[string]string{"error": "unreachable_number", "message": to + " cannot receive SMS"}, nil, nil
	}
	message := &Message{ID: newID("msg_"), Channel: channel, To: to, Body: text}
	return 201, map[string]string{"id": message.ID, "channel": channel, "to": to}, nil, message
}

func (p *provider) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payments", func(w http.ResponseWriter, r *http.Request) {
		p.write(w, r, "authorize", authorize, "")
	})
	actions := map[string]struct {
		name string
		op   operation
	}{
		"capture": {"capture", move("authorized", "captured")},
		"void":    {"void", move("authorized", "voided")},
		"refunds": {"refund", refund},
	}
	mux.HandleFunc("POST /v1/payments/{id}/{action}", func(w http.ResponseWriter, r *http.Request) {
		action, ok := actions[r.PathValue("action")]
		if !ok {
			problem(w, http.StatusNotFound, "no such action", r.PathValue("action"))
			return
		}
		p.write(w, r, action.name, action.op, r.PathValue("id"))
	})
	mux.HandleFunc("GET /v1/payments/{id}", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		payment, ok := p.payments[r.PathValue("id")]
		if !ok {
			problem(w, http.StatusNotFound, "no such payment", "")
			return
		}
		writeJSON(w, 200, payment)
	})
	mux.HandleFunc("POST /v1/messages", func(w http.ResponseWriter, r *http.Request) {
		p.write(w, r, "send_message", sendMessage, "")
	})
	mux.HandleFunc("GET /_admin/messages", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		writeJSON(w, 200, append([]Message{}, p.messages...))
	})
	mux.HandleFunc("GET /_admin/stats", func(w http.ResponseWriter, r *http.Request) {
		type stats struct {
			Authorizations int   `json:"authorizations"`
			Live           int   `json:"live"`
			Captured       int64 `json:"captured"`
			Refunded       int64 `json:"refunded"`
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		perOrder := map[string]*stats{}
		for _, payment := range p.payments {
			s, ok := perOrder[payment.OrderID]
			if !ok {
				s = &stats{}
				perOrder[payment.OrderID] = s
			}
			s.Authorizations++
			if payment.State != "voided" {
				s.Live++
			}
			s.Captured += payment.Captured
			s.Refunded += payment.Refunded
		}
		writeJSON(w, 200, perOrder)
	})
	mux.HandleFunc("PUT /_admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Mode   *string  `json:"mode"`
			Rate   *float64 `json:"rate"`
			DelayS *float64 `json:"delay_s"`
			Count  int      `json:"count"`
			ForS   float64  `json:"for_s"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&body); err != nil {
			problem(w, http.StatusBadRequest, "body must be a JSON object", err.Error())
			return
		}
		set := faults{Mode: "none", DelayS: 5, Count: body.Count}
		if body.Mode != nil {
			set.Mode = *body.Mode
		}
		if set.Mode != "none" && set.Mode != "error" && set.Mode != "slow" && set.Mode != "mixed" {
			problem(w, http.StatusBadRequest, "mode is none, error, slow or mixed", set.Mode)
			return
		}
		if body.ForS < 0 {
			problem(w, http.StatusBadRequest, "for_s is a number of seconds, not below 0", "")
			return
		}
		if body.ForS > 0 {
			set.Until = time.Now().Add(time.Duration(body.ForS * float64(time.Second))).UTC()
		}
		switch { // a number of failures, or (without one) a rate: 1.0 unless given
		case body.Rate != nil:
			set.Rate = *body.Rate
		case set.Count == 0:
			set.Rate = 1.0
		}
		if body.DelayS != nil {
			set.DelayS = *body.DelayS
		}
		p.mu.Lock()
		p.faults = set
		p.mu.Unlock()
		writeJSON(w, 200, set)
	})
	mux.HandleFunc("GET /_admin/faults", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		writeJSON(w, 200, p.faults)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]bool{"ok": true})
	})
	return mux
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "address to serve on")
	journal := flag.String("journal", "gateway.jsonl", "append-only journal of every write")
	keyTTL := flag.Duration("key-ttl", 24*time.Hour, "how long an idempotency key (and a sent message) is remembered")
	flag.Parse()
	p, err := open(*journal, *keyTTL)
	if err != nil {
		log.Fatalf("gateway: cannot open the journal %s: %v", *journal, err)
	}
	go p.tidy(min(time.Minute, max(*keyTTL/4, 100*time.Millisecond)))
	log.Printf("gateway: %d payments, %d idempotency records from %s; serving on %s",
		len(p.payments), len(p.answers), *journal, *listen)
	server := &http.Server{Addr: *listen, Handler: p.routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(server.ListenAndServe())
}
