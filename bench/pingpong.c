// Unloaded latency, paired request by request: one keep-alive connection per target, one
// request in flight at a time, the targets taken in turn, in a new random order each round.
// Each round of requests meets the host in the same state, so a slow moment of a shared VM
// (steal, a neighbour's burst) lands on every target alike, and the difference between two
// targets is taken per round before its median: the drift that moves wrk -c1's p50 by ±10 µs
// between back-to-back runs cancels out (docs/benchmarks.md, thirteenth session).
//
//   pingpong N [-m method] port:path [port:path ...]
//
// Prints a line per target: its spec, p50 and p99 of the round trip in µs, then for each target
// before it, the median over rounds of (this target − that one): against the first target, the
// node, that is the latency the proxy adds; against another proxy, what it adds beyond it.
// With -m, the JSON-RPC method asked (default eth_blockNumber). Answers must carry
// Content-Length or be chunked; a connection the server closes (nginx's keepalive_requests) is
// dialled again and its request sent again.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_TARGETS = 8, WARMUP = 200 };

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int compare(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

// Reads one whole answer; 0 when the server closed the connection first.
static int read_answer(int fd, char *buffer, size_t size) {
    size_t got = 0;
    long need = -1;
    for (;;) {
        ssize_t n = read(fd, buffer + got, size - 1 - got);
        if (n <= 0) return 0;
        got += (size_t)n;
        buffer[got] = 0;
        if (need < 0) {
            char *end = strstr(buffer, "\r\n\r\n");
            if (!end) continue;
            char *length = strcasestr(buffer, "\r\ncontent-length:");
            if (length && length < end) {
                need = (end + 4 - buffer) + atol(length + 17);
            } else if (strstr(end, "\r\n0\r\n\r\n")) {
                return 1;
            } else {
                continue;
            }
        }
        if ((long)got >= need) return 1;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: pingpong N [-m method] port:path [port:path ...]\n");
        return 2;
    }
    int rounds = atoi(argv[1]), first = 2;
    const char *method = "eth_blockNumber";
    if (argc > 4 && strcmp(argv[2], "-m") == 0) {
        method = argv[3];
        first = 4;
    }
    int targets = argc - first;
    if (targets > MAX_TARGETS || rounds < 1) return 2;
    char body[256], request[MAX_TARGETS][1024], buffer[1 << 16];
    int fds[MAX_TARGETS], ports[MAX_TARGETS], lengths[MAX_TARGETS];
    snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":[]}", method);
    for (int t = 0; t < targets; t++) {
        const char *spec = argv[first + t], *path = strchr(spec, ':');
        if (!path) return 2;
        ports[t] = atoi(spec);
        fds[t] = dial(ports[t]);
        lengths[t] = snprintf(request[t], sizeof request[t],
            "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
            path + 1, strlen(body), body);
    }
    long long *rtt = malloc(sizeof(long long) * rounds * targets), *sorted = malloc(sizeof(long long) * rounds);
    unsigned long long seed = 0x9e3779b97f4a7c15ULL;
    int order[MAX_TARGETS];
    for (int t = 0; t < targets; t++) order[t] = t;
    for (int round = -WARMUP; round < rounds; round++) {
        // A new order each round (Fisher–Yates, fixed seed): the target asked right after
        // another one meets its leftovers (a node worker just awake, caches just evicted),
        // which moved a proxy's p50 by 10 µs when the order was fixed.
        for (int t = targets - 1; t > 0; t--) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            int other = (int)((seed >> 33) % (unsigned long long)(t + 1)), kept = order[t];
            order[t] = order[other];
            order[other] = kept;
        }
        for (int step = 0; step < targets; step++) {
            int t = order[step];
            for (;;) {
                long long start = now_ns();
                if (write(fds[t], request[t], lengths[t]) == lengths[t] && read_answer(fds[t], buffer, sizeof buffer)) {
                    if (round >= 0) rtt[t * rounds + round] = now_ns() - start;
                    break;
                }
                close(fds[t]);
                fds[t] = dial(ports[t]);
            }
        }
    }
    for (int t = 0; t < targets; t++) {
        long long *own = rtt + t * rounds;
        memcpy(sorted, own, sizeof(long long) * rounds);
        qsort(sorted, rounds, sizeof(long long), compare);
        printf("%s %.1f %.1f", argv[first + t], sorted[rounds / 2] / 1e3, sorted[rounds * 99 / 100] / 1e3);
        for (int other = 0; other < t; other++) {
            for (int i = 0; i < rounds; i++) sorted[i] = own[i] - rtt[other * rounds + i];
            qsort(sorted, rounds, sizeof(long long), compare);
            printf(" %.1f", sorted[rounds / 2] / 1e3);
        }
        printf("\n");
    }
    return 0;
}
