// Reads Mermaid text on stdin; exits 0 when the real mermaid parser accepts it, 1 with the error when not.
import { JSDOM } from "jsdom";
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window; globalThis.document = dom.window.document;
globalThis.DOMPurify = undefined;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });
const text = await new Promise(r => { let d=""; process.stdin.on("data", c => d += c); process.stdin.on("end", () => r(d)); });
try { const res = await mermaid.parse(text); console.log("ok", JSON.stringify(res)); }
catch (e) { console.error("syntax error:", e.message ?? e); process.exit(1); }
