// One Socket.IO app replica: echoes "echo" events with its replica id, and a raw
// WebSocket echo endpoint at /ws for byte-level tunnel tests.
// Usage: node replica.js PORT REPLICA_ID   (prints "ready PORT" once listening)
const http = require("http");
const { Server } = require("socket.io");
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2]);
const replica = process.argv[3] || String(port);

const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end(`replica ${replica}\n`);
});
const io = new Server(server, { pingInterval: 25000, pingTimeout: 20000 });
io.on("connection", (socket) => {
  socket.on("echo", (payload, ack) => ack({ replica, payload }));
});
const wss = new WebSocketServer({ noServer: true });
server.on("upgrade", (req, socket, head) => {
  if (!req.url.startsWith("/ws")) return; // socket.io handles its own upgrades
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.send(JSON.stringify({ replica }));
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
});
server.listen(port, "127.0.0.1", () => console.log(`ready ${server.address().port}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
