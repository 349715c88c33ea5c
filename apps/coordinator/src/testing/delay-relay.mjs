// A TCP relay that adds a fixed delay each way, for the network lab (net-lab.ts), whose kernel has no netem:
//   node delay-relay.mjs LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS
// Every chunk read from either side is written to the other DELAY_MS after it arrived, in order; chunks are not
// held behind each other (the delay is latency, not a rate). Timers are too coarse for 0.1 ms, so while a chunk
// is due within a millisecond the relay polls the clock on every turn of the event loop (I/O still runs between
// turns). Prints "listening" once it accepts connections; stops on SIGTERM.
import { createServer, connect } from 'node:net';

const [listenAt, target, delayArg] = process.argv.slice(2);
const delayMs = Number(delayArg);
if (!listenAt || !target || !(delayMs >= 0)) {
  console.error('usage: node delay-relay.mjs LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS');
  process.exit(2);
}
const split = (hostPort) => {
  const i = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, i), port: Number(hostPort.slice(i + 1)) };
};

/** Copies `from` to `to`, each chunk DELAY_MS late; pauses `from` while `to` is congested. */
function delayedPipe(from, to) {
  const queue = []; // [due (ms, performance.now()), chunk], oldest first
  let scheduled = false;
  let ended = false;
  const pump = () => {
    scheduled = false;
    const now = performance.now();
    while (queue.length > 0 && queue[0][0] <= now) {
      if (!to.write(queue.shift()[1])) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    }
    if (queue.length > 0) schedule(queue[0][0] - now);
    else if (ended) to.end();
  };
  const schedule = (waitMs) => {
    if (scheduled) return;
    scheduled = true;
    if (waitMs > 1) setTimeout(pump, waitMs - 1);
    else setImmediate(pump);
  };
  from.on('data', (chunk) => {
    queue.push([performance.now() + delayMs, chunk]);
    schedule(delayMs);
  });
  from.on('end', () => {
    ended = true;
    if (queue.length === 0) to.end();
  });
}

const server = createServer((client) => {
  const upstream = connect(split(target));
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  delayedPipe(client, upstream);
  delayedPipe(upstream, client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
server.listen(split(listenAt), () => console.log('listening'));
process.on('SIGTERM', () => process.exit(0));
