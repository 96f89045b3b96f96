// Ack-only socket.io server: `node server.js PORT`. The vote path benchmark's Node baseline
// (the original ClickVote's transport, no storage): `vote` and `login` are acknowledged at once.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2]);
const httpServer = http.createServer();
const io = new Server(httpServer, { maxHttpBufferSize: 64 * 1024 });

io.on("connection", (socket) => {
  socket.on("vote", (_data, ack) => {
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("login", (_data, ack) => {
    if (typeof ack === "function") ack({ ok: true, token: "x" });
  });
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
httpServer.listen(port, "127.0.0.1");
