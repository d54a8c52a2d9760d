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
// The customer vault is shaped like Stripe's: a customer (cus_...) holds payment methods
// (pm_...), each made from a one-time card token (the provider's client-side tokenization)
// and attached to one customer; a customer's invoice_settings.default_payment_method names
// its default. A payment method is made only from a known test token, whose card decides
// how a payment with it ends, as the provider's test cards do: tok_visa (visa 4242),
// tok_visa_debit (visa 5556), tok_mastercard (mastercard 4444), tok_amex (amex 0005) are
// approved; tok_decline (visa 0002) is declined; tok_insufficient (visa 9995) is declined
// for insufficient funds. An id the stand-in does not have is a 404 in the path and a 400
// in the body (resource_missing); a method attached to another customer, or to none, is a
// 400 (payment_method_not_attached, payment_method_already_attached).
//
// API (amounts in minor units):
//
//	POST /v1/payments                {amount, currency, token, order_id}  -> 201 payment | 402
//	POST /v1/payments                {amount, currency, payment_method, customer, order_id} -> 201 payment | 402 | 400
//	POST /v1/payments/{id}/capture   {}                                   -> 200 payment | 409
//	POST /v1/payments/{id}/void      {}                                   -> 200 payment | 409
//	POST /v1/payments/{id}/refunds   {amount}                             -> 201 refund  | 409
//	GET  /v1/payments/{id}                                                -> 200 payment
//	POST /v1/customers               {email, name, metadata}              -> 201 customer
//	GET  /v1/customers/{id}                                               -> 200 customer | 404
//	POST /v1/customers/{id}          {invoice_settings: {default_payment_method}, email, name, metadata}
//	                                                                      -> 200 customer | 400 | 404
//	DELETE /v1/customers/{id}                                             -> 200 {id, deleted} | 404 (its methods detached)
//	GET  /v1/customers/{id}/payment_methods                               -> 200 list, newest first | 404
//	POST /v1/payment_methods         {type: card, card: {token}}          -> 201 payment method | 400
//	GET  /v1/payment_methods/{id}                                         -> 200 payment method | 404
//	POST /v1/payment_methods/{id}/attach {customer}                       -> 200 payment method | 400 | 404
//	POST /v1/payment_methods/{id}/detach {}                               -> 200 payment method | 400 | 404
//	POST /v1/messages                {channel: sms|push, to, body}        -> 201 message | 422 (SMS to +1555...)
//	GET  /_admin/messages                                                 -> every message sent
//	GET  /_admin/stats                                                    -> counts per order
//	PUT  /_admin/faults              {mode: "none"|"error"|"slow"|"mixed", rate: 0..1, delay_s, count, for_s}
//	GET  /_admin/faults                                                   -> the fault switch now
//	GET  /healthz                                                         -> {ok, source} (the source it was built from)
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
	"sort"
	"strings"
	"sync"
	"time"
)

const unreachable = "+1555" // SMS numbers with this prefix are refused as unreachable
const maxBody = 64 << 10

// source is the fingerprint of the source this binary was built from (ops/stack sets it: -ldflags -X).
var source = "unknown"

var declines = map[string]string{"tok_decline": "card_declined", "tok_insufficient": "insufficient_funds"}

// cards are the test tokens a payment method can be made from; the card number decides a payment's end.
var cards = map[string]Card{
	"tok_visa":         {Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2034, Funding: "credit"},
	"tok_visa_debit":   {Brand: "visa", Last4: "5556", ExpMonth: 12, ExpYear: 2034, Funding: "debit"},
	"tok_mastercard":   {Brand: "mastercard", Last4: "4444", ExpMonth: 12, ExpYear: 2034, Funding: "credit"},
	"tok_amex":         {Brand: "amex", Last4: "0005", ExpMonth: 12, ExpYear: 2034, Funding: "credit"},
	"tok_decline":      {Brand: "visa", Last4: "0002", ExpMonth: 12, ExpYear: 2034, Funding: "credit"},
	"tok_insufficient": {Brand: "visa", Last4: "9995", ExpMonth: 12, ExpYear: 2034, Funding: "credit"},
}

// cardDeclines are the saved cards whose payments are declined, by their last four digits.
var cardDeclines = map[string]string{"0002": "card_declined", "9995": "insufficient_funds"}

type Payment struct {
	ID            string `json:"id"`
	OrderID       string `json:"order_id"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	State         string `json:"state"`
	Captured      int64  `json:"captured"`
	Refunded      int64  `json:"refunded"`
	PaymentMethod string `json:"payment_method,omitempty"` // a saved method's payment, with its customer
	Customer      string `json:"customer,omitempty"`
}

type InvoiceSettings struct {
	DefaultPaymentMethod *string `json:"default_payment_method"`
}

type Customer struct {
	ID              string            `json:"id"`
	Object          string            `json:"object"`
	Email           *string           `json:"email"`
	Name            *string           `json:"name"`
	Metadata        map[string]string `json:"metadata"`
	InvoiceSettings InvoiceSettings   `json:"invoice_settings"`
	Created         int64             `json:"created"`
	Deleted         bool              `json:"deleted,omitempty"` // in the journal: the customer is gone
}

type Card struct {
	Brand    string `json:"brand"`
	Last4    string `json:"last4"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	Funding  string `json:"funding"`
}

type PaymentMethod struct {
	ID       string  `json:"id"`
	Object   string  `json:"object"`
	Type     string  `json:"type"`
	Card     Card    `json:"card"`
	Customer *string `json:"customer"` // null while attached to none
	Created  int64   `json:"created"`
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

// change is the state one write leaves behind.
type change struct {
	Payment  *Payment         `json:"payment,omitempty"`
	Message  *Message         `json:"message,omitempty"`
	Customer *Customer        `json:"customer,omitempty"`
	Methods  []*PaymentMethod `json:"payment_methods,omitempty"`
}

// entry is one journal line: the answer under its key and the state it left behind.
type entry struct {
	Key    string `json:"key"`
	Answer answer `json:"answer"`
	change
}

type faults struct {
	Mode   string    `json:"mode"`
	Rate   float64   `json:"rate"`
	DelayS float64   `json:"delay_s"`
	Count  int       `json:"count"`
	Until  time.Time `json:"until,omitzero"` // the faults end at this time (zero: when switched off)
}

type provider struct {
	mu        sync.Mutex
	answers   map[string]answer
	payments  map[string]*Payment
	customers map[string]*Customer
	methods   map[string]*PaymentMethod
	messages  []Message
	faults    faults
	path      string
	keyTTL    time.Duration
	journal   *os.File
	out       *bufio.Writer
	lines     int // lines in the journal file
}

func open(path string, keyTTL time.Duration) (*provider, error) {
	p := &provider{
		answers: map[string]answer{}, payments: map[string]*Payment{}, customers: map[string]*Customer{},
		methods: map[string]*PaymentMethod{}, faults: faults{Mode: "none", DelayS: 5}, path: path, keyTTL: keyTTL,
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

// expire forgets idempotency records and messages older than the key TTL; payments and the vault stay.
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
	return len(p.answers) + len(p.payments) + len(p.customers) + len(p.methods) + len(p.messages)
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
		put(entry{change: change{Payment: payment}})
	}
	for _, customer := range p.customers {
		put(entry{change: change{Customer: customer}})
	}
	for _, method := range p.methods {
		put(entry{change: change{Methods: []*PaymentMethod{method}}})
	}
	for i := range p.messages {
		put(entry{change: change{Message: &p.messages[i]}})
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
	if e.Key != "" { // lines a compaction wrote for the state carry no key
		p.answers[e.Key] = e.Answer
	}
	if e.Payment != nil {
		copied := *e.Payment
		p.payments[copied.ID] = &copied
	}
	if e.Customer != nil {
		if e.Customer.Deleted {
			delete(p.customers, e.Customer.ID)
		} else {
			copied := *e.Customer
			p.customers[copied.ID] = &copied
		}
	}
	for _, method := range e.Methods {
		copied := *method
		p.methods[copied.ID] = &copied
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
type operation func(p *provider, body map[string]any, target string) (int, any, change)

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
	status, result, changed := op(p, body, target)
	data, _ := json.Marshal(result)
	now := time.Now().UTC()
	if changed.Message != nil {
		changed.Message.At = now
	}
	if err := p.record(entry{key, answer{fingerprint, status, data, now}, changed}); err != nil {
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

// refused is an answer that changes nothing.
func refused(status int, code, message string) (int, any, change) {
	return status, failure(code, message), change{}
}

func authorize(p *provider, body map[string]any, _ string) (int, any, change) {
	amount, ok := positive(body["amount"])
	currency, okCurrency := body["currency"].(string)
	token, okToken := body["token"].(string)
	method, okMethod := body["payment_method"].(string)
	if !ok || !okCurrency || okToken == okMethod {
		return refused(400, "invalid_request", "amount, currency and a token or a payment_method are required")
	}
	orderID, _ := body["order_id"].(string)
	payment := &Payment{ID: newID("pay_"), OrderID: orderID, Amount: amount, Currency: currency, State: "authorized"}
	if okToken {
		if code, declined := declines[token]; declined {
			return refused(402, code, "the card was declined")
		}
		return 201, payment, change{Payment: payment}
	}
	customer, _ := body["customer"].(string)
	if customer == "" {
		return refused(400, "invalid_request", "a payment_method is charged with the customer it is attached to")
	}
	saved, found := p.methods[method]
	if !found {
		return refused(400, "resource_missing", "no such payment method: "+method)
	}
	if saved.Customer == nil || *saved.Customer != customer {
		return refused(400, "payment_method_not_attached", method+" is not attached to customer "+customer)
	}
	if code, declined := cardDeclines[saved.Card.Last4]; declined {
		return refused(402, code, "the card was declined")
	}
	payment.PaymentMethod, payment.Customer = method, customer
	return 201, payment, change{Payment: payment}
}

func move(allowed, to string) operation {
	return func(p *provider, _ map[string]any, id string) (int, any, change) {
		current, ok := p.payments[id]
		if !ok {
			return refused(404, "no_such_payment", "no such payment")
		}
		if current.State == to {
			return 200, current, change{}
		}
		if current.State != allowed {
			return refused(409, "invalid_state", "payment is "+current.State)
		}
		changed := *current
		changed.State = to
		if to == "captured" {
			changed.Captured = changed.Amount
		}
		return 200, &changed, change{Payment: &changed}
	}
}

func refund(p *provider, body map[string]any, id string) (int, any, change) {
	current, ok := p.payments[id]
	if !ok {
		return refused(404, "no_such_payment", "no such payment")
	}
	amount, ok := positive(body["amount"])
	if !ok {
		return refused(400, "invalid_request", "amount must be a positive integer")
	}
	if (current.State != "captured" && current.State != "refunded") || current.Refunded+amount > current.Captured {
		return refused(409, "invalid_state", "nothing left to refund")
	}
	changed := *current
	changed.Refunded += amount
	changed.State = "refunded"
	return 201, map[string]any{"id": newID("re_"), "payment": &changed, "amount": amount}, change{Payment: &changed}
}

// text reads an optional string field: absent or null is nil; ok is false for any other type.
func text(body map[string]any, name string) (value *string, ok bool) {
	raw, present := body[name]
	if !present || raw == nil {
		return nil, true
	}
	s, isString := raw.(string)
	return &s, isString
}

// metadata reads an optional object of strings.
func metadata(body map[string]any) (map[string]string, bool) {
	raw, present := body["metadata"]
	if !present || raw == nil {
		return nil, true
	}
	fields, ok := raw.(map[string]any)
	if !ok {
		return nil, false
	}
	read := map[string]string{}
	for name, value := range fields {
		s, ok := value.(string)
		if !ok {
			return nil, false
		}
		read[name] = s
	}
	return read, true
}

// profile sets what a create or an update gives of a customer's email, name and metadata; false when malformed.
func profile(customer *Customer, body map[string]any) bool {
	email, okEmail := text(body, "email")
	name, okName := text(body, "name")
	meta, okMeta := metadata(body)
	if !okEmail || !okName || !okMeta {
		return false
	}
	if email != nil {
		customer.Email = email
	}
	if name != nil {
		customer.Name = name
	}
	for key, value := range meta {
		customer.Metadata[key] = value
	}
	return true
}

func createCustomer(_ *provider, body map[string]any, _ string) (int, any, change) {
	customer := &Customer{ID: newID("cus_"), Object: "customer", Metadata: map[string]string{}, Created: time.Now().Unix()}
	if !profile(customer, body) {
		return refused(400, "invalid_request", "email and name are strings, metadata an object of strings")
	}
	return 201, customer, change{Customer: customer}
}

// owned is the payment method attached to customer, or the refusal that says why it is not.
func (p *provider) owned(id, customer string) (*PaymentMethod, int, any) {
	method, ok := p.methods[id]
	if !ok {
		return nil, 400, failure("resource_missing", "no such payment method: "+id)
	}
	if method.Customer == nil || *method.Customer != customer {
		return nil, 400, failure("payment_method_not_attached", id+" is not attached to customer "+customer)
	}
	return method, 0, nil
}

func updateCustomer(p *provider, body map[string]any, id string) (int, any, change) {
	current, ok := p.customers[id]
	if !ok {
		return refused(404, "resource_missing", "no such customer: "+id)
	}
	changed := *current
	changed.Metadata = map[string]string{}
	for key, value := range current.Metadata {
		changed.Metadata[key] = value
	}
	if !profile(&changed, body) {
		return refused(400, "invalid_request", "email and name are strings, metadata an object of strings")
	}
	if raw, present := body["invoice_settings"]; present {
		settings, isObject := raw.(map[string]any)
		chosen, okChosen := text(settings, "default_payment_method")
		if !isObject || !okChosen {
			return refused(400, "invalid_request", "invoice_settings.default_payment_method is a payment method id, or \"\" or null to unset")
		}
		if chosen != nil && *chosen == "" {
			chosen = nil
		}
		if chosen != nil {
			if _, status, refusal := p.owned(*chosen, id); refusal != nil {
				return status, refusal, change{}
			}
		}
		changed.InvoiceSettings.DefaultPaymentMethod = chosen
	}
	return 200, &changed, change{Customer: &changed}
}

// deleteCustomer forgets the customer and detaches its payment methods.
func deleteCustomer(p *provider, _ map[string]any, id string) (int, any, change) {
	if _, ok := p.customers[id]; !ok {
		return refused(404, "resource_missing", "no such customer: "+id)
	}
	changed := change{Customer: &Customer{ID: id, Object: "customer", Deleted: true}}
	for _, method := range p.listed(id) {
		detached := *method
		detached.Customer = nil
		changed.Methods = append(changed.Methods, &detached)
	}
	return 200, map[string]any{"id": id, "object": "customer", "deleted": true}, changed
}

func createPaymentMethod(_ *provider, body map[string]any, _ string) (int, any, change) {
	kind, _ := body["type"].(string)
	card, _ := body["card"].(map[string]any)
	token, okToken := card["token"].(string)
	if kind != "card" || !okToken {
		return refused(400, "invalid_request", "type card and card.token are required")
	}
	details, known := cards[token]
	if !known {
		return refused(400, "resource_missing", "no such token: "+token)
	}
	method := &PaymentMethod{ID: newID("pm_"), Object: "payment_method", Type: "card", Card: details, Created: time.Now().Unix()}
	return 201, method, change{Methods: []*PaymentMethod{method}}
}

func attach(p *provider, body map[string]any, id string) (int, any, change) {
	current, ok := p.methods[id]
	if !ok {
		return refused(404, "resource_missing", "no such payment method: "+id)
	}
	customer, _ := body["customer"].(string)
	if _, known := p.customers[customer]; !known {
		return refused(400, "resource_missing", "no such customer: "+customer)
	}
	if current.Customer != nil {
		if *current.Customer == customer {
			return 200, current, change{}
		}
		return refused(400, "payment_method_already_attached", id+" is attached to another customer")
	}
	attached := *current
	attached.Customer = &customer
	return 200, &attached, change{Methods: []*PaymentMethod{&attached}}
}

// detach takes the method off its customer, and off the customer's default if it was that.
func detach(p *provider, _ map[string]any, id string) (int, any, change) {
	current, ok := p.methods[id]
	if !ok {
		return refused(404, "resource_missing", "no such payment method: "+id)
	}
	if current.Customer == nil {
		return refused(400, "payment_method_not_attached", id+" is not attached to a customer")
	}
	detached := *current
	detached.Customer = nil
	changed := change{Methods: []*PaymentMethod{&detached}}
	if owner, ok := p.customers[*current.Customer]; ok {
		if chosen := owner.InvoiceSettings.DefaultPaymentMethod; chosen != nil && *chosen == id {
			cleared := *owner
			cleared.InvoiceSettings.DefaultPaymentMethod = nil
			changed.Customer = &cleared
		}
	}
	return 200, &detached, changed
}

// listed is the customer's payment methods, newest first.
func (p *provider) listed(customer string) []*PaymentMethod {
	found := []*PaymentMethod{}
	for _, method := range p.methods {
		if method.Customer != nil && *method.Customer == customer {
			found = append(found, method)
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].Created != found[j].Created {
			return found[i].Created > found[j].Created
		}
		return found[i].ID < found[j].ID
	})
	return found
}

func sendMessage(_ *provider, body map[string]any, _ string) (int, any, change) {
	channel, _ := body["channel"].(string)
	to := fmt.Sprint(body["to"])
	if body["to"] == nil {
		to = ""
	}
	text, okText := body["body"].(string)
	if (channel != "sms" && channel != "push") || to == "" || !okText {
		return 400, map[string]string{"error": "invalid_request", "message": "channel (sms|push), to and body are required"}, change{}
	}
	if channel == "sms" && strings.HasPrefix(to, unreachable) {
		return 422, map[string]string{"error": "unreachable_number", "message": to + " cannot receive SMS"}, change{}
	}
	message := &Message{ID: newID("msg_"), Channel: channel, To: to, Body: text}
	return 201, map[string]string{"id": message.ID, "channel": channel, "to": to}, change{Message: message}
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
	mux.HandleFunc("POST /v1/customers", func(w http.ResponseWriter, r *http.Request) {
		p.write(w, r, "create_customer", createCustomer, "")
	})
	mux.HandleFunc("POST /v1/customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		p.write(w, r, "update_customer", updateCustomer, r.PathValue("id"))
	})
	mux.HandleFunc("DELETE /v1/customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		p.write(w, r, "delete_customer", deleteCustomer, r.PathValue("id"))
	})
	mux.HandleFunc("GET /v1/customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		customer, ok := p.customers[r.PathValue("id")]
		if !ok {
			writeJSON(w, 404, failure("resource_missing", "no such customer: "+r.PathValue("id")))
			return
		}
		writeJSON(w, 200, customer)
	})
	mux.HandleFunc("GET /v1/customers/{id}/payment_methods", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		id := r.PathValue("id")
		if _, ok := p.customers[id]; !ok {
			writeJSON(w, 404, failure("resource_missing", "no such customer: "+id))
			return
		}
		writeJSON(w, 200, map[string]any{"object": "list", "data": p.listed(id), "has_more": false, "url": r.URL.Path})
	})
	mux.HandleFunc("POST /v1/payment_methods", func(w http.ResponseWriter, r *http.Request) {
		p.write(w, r, "create_payment_method", createPaymentMethod, "")
	})
	methodActions := map[string]struct {
		name string
		op   operation
	}{"attach": {"attach", attach}, "detach": {"detach", detach}}
	mux.HandleFunc("POST /v1/payment_methods/{id}/{action}", func(w http.ResponseWriter, r *http.Request) {
		action, ok := methodActions[r.PathValue("action")]
		if !ok {
			problem(w, http.StatusNotFound, "no such action", r.PathValue("action"))
			return
		}
		p.write(w, r, action.name, action.op, r.PathValue("id"))
	})
	mux.HandleFunc("GET /v1/payment_methods/{id}", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		method, ok := p.methods[r.PathValue("id")]
		if !ok {
			writeJSON(w, 404, failure("resource_missing", "no such payment method: "+r.PathValue("id")))
			return
		}
		writeJSON(w, 200, method)
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
		writeJSON(w, 200, map[string]any{"ok": true, "source": source})
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
	log.Printf("gateway: %d payments, %d customers, %d payment methods, %d idempotency records from %s; serving on %s",
		len(p.payments), len(p.customers), len(p.methods), len(p.answers), *journal, *listen)
	server := &http.Server{Addr: *listen, Handler: p.routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(server.ListenAndServe())
}
