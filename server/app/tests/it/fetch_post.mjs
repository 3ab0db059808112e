// Posts a RunAgentInput of about <bytes> bytes to <url> with Node's own fetch (undici, what
// browsers' behaviour is checked against) and prints one JSON line: {status, connection, body}
// or {error, cause} when fetch itself fails ("Failed to fetch", EPIPE, a reset).
//
// usage: node fetch_post.mjs <url> <token> <bytes> <length|stream>
//   length: the body is a string (Content-Length declared)
//   stream: the body is a ReadableStream of 64 KiB chunks (chunked, the size found while reading)

const [url, token, bytes, mode] = process.argv.slice(2);
const size = Number(bytes);
const head = JSON.stringify({
  threadId: `thread_fetch_${process.pid}_${mode}`,
  runId: `run_fetch_${process.pid}`,
  messages: [{ id: "u1", role: "user", content: "" }],
});
// Pad the message content so the whole body is `size` bytes (at least the bare input).
const pad = Math.max(0, size - head.length);
const text = head.replace('"content":""', `"content":"${"x".repeat(pad)}"`);

let body = text;
const init = {
  method: "POST",
  headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
};
if (mode === "stream") {
  const encoded = new TextEncoder().encode(text);
  let at = 0;
  body = new ReadableStream({
    pull(controller) {
      if (at >= encoded.length) {
        controller.close();
        return;
      }
      controller.enqueue(encoded.subarray(at, at + 65536));
      at += 65536;
    },
  });
  init.duplex = "half";
}
init.body = body;

try {
  const response = await fetch(url, init);
  const answer = await response.text();
  console.log(
    JSON.stringify({
      status: response.status,
      connection: response.headers.get("connection"),
      body: answer.length > 4096 ? answer.slice(-4096) : answer,
    }),
  );
} catch (error) {
  console.log(JSON.stringify({ error: String(error), cause: String(error?.cause) }));
}
