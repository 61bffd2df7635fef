// Runs N Socket.IO clients against a URL with the given transports, each exchanging
// MESSAGES acknowledged echoes, and prints one JSON summary line:
// {"connected":N,"acks":N,"errors":[...],"sessionUnknown":N,"replicas":{"id":count},"upgraded":N}
// Usage: node clients.js URL N MESSAGES TRANSPORTS(polling,websocket|polling|websocket) [TIMEOUT_MS]
const { io } = require("socket.io-client");

const [url, count, messages, transportList, timeoutArg] = process.argv.slice(2);
const transports = transportList.split(",");
const timeoutMs = Number(timeoutArg || 20000);
const summary = { connected: 0, acks: 0, errors: [], sessionUnknown: 0, replicas: {}, upgraded: 0 };

function runClient(i) {
  return new Promise((resolve) => {
    const socket = io(url, { transports, reconnection: false, forceNew: true, timeout: timeoutMs });
    const done = (err) => {
      if (err) summary.errors.push(`client ${i}: ${err}`);
      socket.close();
      resolve();
    };
    socket.on("connect_error", (err) => {
      const text = String(err && (err.description?.message || err.context?.responseText || err.message));
      if (/Session ID unknown/i.test(text) || /Session ID unknown/i.test(JSON.stringify(err.context || ""))) summary.sessionUnknown++;
      done(`connect_error ${text}`);
    });
    socket.on("disconnect", (reason) => {
      if (reason !== "io client disconnect") summary.errors.push(`client ${i}: disconnect ${reason}`);
    });
    socket.on("connect", async () => {
      summary.connected++;
      try {
        for (let m = 0; m < Number(messages); m++) {
          const reply = await socket.timeout(timeoutMs).emitWithAck("echo", { i, m });
          if (reply.payload.i !== i || reply.payload.m !== m) throw new Error("wrong echo");
          summary.replicas[reply.replica] = (summary.replicas[reply.replica] || 0) + 1;
          summary.acks++;
          // Give the polling -> websocket upgrade time to happen mid-conversation.
          await new Promise((r) => setTimeout(r, 20));
        }
        const engine = socket.io.engine;
        if (transports.length > 1 && engine.transport.name !== "websocket") {
          // The upgrade runs in the background; give it a moment before judging.
          await new Promise((r) => { engine.once("upgrade", r); setTimeout(r, 3000); });
        }
        if (engine.transport.name === "websocket") summary.upgraded++;
        done();
      } catch (e) {
        done(e.message);
      }
    });
  });
}

Promise.all(Array.from({ length: Number(count) }, (_, i) => runClient(i))).then(() => {
  console.log(JSON.stringify(summary));
  process.exit(0);
});
setTimeout(() => {
  summary.errors.push("overall timeout");
  console.log(JSON.stringify(summary));
  process.exit(1);
}, timeoutMs * 3).unref();
