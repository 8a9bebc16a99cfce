# io_bound_200: the asyncio peer of bench/io_bound_200.c: 200 HTTP GETs, one
# task each, against an asyncio server in the same loop that waits 10 ms
# before each answer; wall time per round of 200, all answers checked.
# Usage: io_bound_200.py [rounds, default 50]
import asyncio
import sys
import time

GETS = 200


async def handle(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    path = head.split(b" ")[1]
    await asyncio.sleep(0.010)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (len(path), path))
    await writer.drain()
    writer.close()


async def get(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.startswith(b"HTTP/1.1 200 ") and body == path


async def main(rounds):
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    correct = 0
    t0 = time.monotonic()
    for _ in range(rounds):
        paths = [b"/item/%d" % i for i in range(GETS)]
        oks = await asyncio.gather(*(get(port, p) for p in paths))
        correct += sum(oks)
    elapsed = time.monotonic() - t0
    server.close()
    await server.wait_closed()
    if correct != rounds * GETS:
        sys.exit("io_bound_200: %d of %d answers right" % (correct, rounds * GETS))
    print("io_bound_200: %.2f ms" % (elapsed * 1000 / rounds))


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
