/*
 * devkafka: librdkafka's mock cluster (rdkafka_mock.h) as a standalone Kafka
 * broker for the local lab and the integration fixture. It speaks the real
 * Kafka protocol (produce, fetch, consumer groups) to other processes.
 *
 *   devkafka [--brokers N] [--topic NAME:PARTITIONS]... [--no-default-topics]
 *            [--bootstrap-file PATH] [--control-port PORT] [--control-file PATH]
 *
 * It creates the design's topics, writes the bootstrap address to PATH
 * (atomically, via rename, once the topics exist), serves a small fault
 * control interface on 127.0.0.1:PORT, logs JSON lines and runs until
 * SIGTERM/SIGINT, then exits 0. docs/kafka.md documents the control
 * commands and the mock broker's local-lab limits.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"
#include "common/banned.h"

#define MAX_TOPICS 64

struct topic {
    char name[250];
    int partitions;
};

/* The design's topics (architecture section 5); keep in sync with docs/kafka.md. */
static const struct topic default_topics[] = {
    {"exchange.orders.commands", 8},
    {"exchange.orders.events", 8},
    {"exchange.trades", 8},
    {"wallet.events", 4},
    {"risk.alerts", 2},
    {"shop.orders.events", 4},
};

struct opts {
    int brokers;
    int ntopics;
    struct topic topics[MAX_TOPICS];
    const char *bootstrap_file;
    const char *control_file;
    int control_port; /* -1: disabled */
};

/* Kafka API keys accepted by name in error-push (numbers work too). */
static const struct {
    const char *name;
    int16_t key;
} api_keys[] = {
    {"Produce", 0},          {"Fetch", 1},
    {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8},     {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},       {"LeaveGroup", 13},
    {"SyncGroup", 14},       {"ApiVersions", 18},
    {"InitProducerId", 22},  {"AddPartitionsToTxn", 24},
    {"EndTxn", 26},
};

static void usage(void)
{
    fprintf(stderr,
            "usage: devkafka [--brokers N] [--topic NAME:PARTITIONS]... [--no-default-topics]\n"
            "                [--bootstrap-file PATH] [--control-port PORT|0] "
            "[--control-file PATH]\n");
}

static int parse_int(const char *s, int min, int max, int *out)
{
    int64_t v;
    if (cm_parse_int64(s, &v) != 0 || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int add_topic(struct opts *o, const char *spec)
{
    const char *colon = strrchr(spec, ':');
    int parts = 1;
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n == 0 || n >= sizeof o->topics[0].name || o->ntopics >= MAX_TOPICS)
        return -1;
    if (colon && parse_int(colon + 1, 1, 1000, &parts) != 0)
        return -1;
    for (int i = 0; i < o->ntopics; i++)
        if (strlen(o->topics[i].name) == n && memcmp(o->topics[i].name, spec, n) == 0) {
            o->topics[i].partitions = parts; /* later spec wins */
            return 0;
        }
    memcpy(o->topics[o->ntopics].name, spec, n);
    o->topics[o->ntopics].name[n] = '\0';
    o->topics[o->ntopics].partitions = parts;
    o->ntopics++;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"no-default-topics", no_argument, NULL, 'n'},
        {"bootstrap-file", required_argument, NULL, 'f'},
        {"control-port", required_argument, NULL, 'p'},
        {"control-file", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int defaults = 1, c;
    struct opts extra = {0};
    memset(o, 0, sizeof *o);
    o->brokers = 1;
    o->control_port = 0;
    while ((c = getopt_long(argc, argv, "b:t:nf:p:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (parse_int(optarg, 1, 16, &o->brokers) != 0)
                return fprintf(stderr, "devkafka: --brokers must be 1..16\n"), -1;
            break;
        case 't':
            if (add_topic(&extra, optarg) != 0)
                return fprintf(stderr, "devkafka: bad --topic \"%s\" (NAME:PARTITIONS)\n", optarg),
                       -1;
            break;
        case 'n': defaults = 0; break;
        case 'f': o->bootstrap_file = optarg; break;
        case 'p':
            if (parse_int(optarg, 0, 65535, &o->control_port) != 0)
                return fprintf(stderr, "devkafka: --control-port must be 0..65535\n"), -1;
            break;
        case 'c': o->control_file = optarg; break;
        case 'h': usage(); return 1;
        default: usage(); return -1;
        }
    }
    if (optind != argc)
        return usage(), -1;
    if (defaults)
        for (size_t i = 0; i < sizeof default_topics / sizeof default_topics[0]; i++)
            o->topics[o->ntopics++] = default_topics[i];
    for (int i = 0; i < extra.ntopics; i++) {
        char spec[300];
        snprintf(spec, sizeof spec, "%s:%d", extra.topics[i].name, extra.topics[i].partitions);
        if (add_topic(o, spec) != 0)
            return fprintf(stderr, "devkafka: too many topics\n"), -1;
    }
    return 0;
}

/* Writes content to path via a temporary file and rename(2), so readers
 * polling for the file never see it half written. */
static int write_atomic(const char *path, const char *content)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fputs(content, f) >= 0 && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void rk_log(const rd_kafka_t *rk, int level, const char *fac, const char *msg)
{
    (void)rk;
    cm_log_kv(level <= 3   ? CM_LOG_ERROR
              : level <= 4 ? CM_LOG_WARN
                           : CM_LOG_DEBUG,
              msg, "facility", fac, (const char *)NULL);
}

static int parse_api_key(const char *s, int16_t *out)
{
    int v;
    for (size_t i = 0; i < sizeof api_keys / sizeof api_keys[0]; i++)
        if (strcasecmp(s, api_keys[i].name) == 0) {
            *out = api_keys[i].key;
            return 0;
        }
    if (parse_int(s, 0, 100, &v) != 0)
        return -1;
    *out = (int16_t)v;
    return 0;
}

/* Error by librdkafka name ("REQUEST_TIMED_OUT", with or without the
 * "ERR_" prefix or leading underscore) or by Kafka protocol number. */
static int parse_error(const char *s, rd_kafka_resp_err_t *out)
{
    int v;
    if (parse_int(s, -200, 200, &v) == 0) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    if (strncasecmp(s, "ERR_", 4) == 0)
        s += 4;
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && strcasecmp(descs[i].name, s) == 0) {
            *out = descs[i].code;
            return 0;
        }
    return -1;
}

/* Runs one control command; the reply goes to out ("ok ..." or "error: ..."). */
static int run_command(rd_kafka_mock_cluster_t *mc, const struct opts *o, char **argv, int argc,
                       struct cm_buf *out)
{
    int id = 0, ms = 0, cnt = 0;
    int16_t key = 0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR, kerr;
    const char *cmd = argc > 0 ? argv[0] : "";

    if (strcmp(cmd, "broker-down") == 0 || strcmp(cmd, "broker-up") == 0) {
        if (argc != 2 || parse_int(argv[1], 1, o->brokers, &id) != 0)
            return cm_buf_printf(out, "error: usage: %s BROKER_ID (1..%d)\n", cmd, o->brokers), -1;
        kerr = cmd[7] == 'd' ? rd_kafka_mock_broker_set_down(mc, id)
                             : rd_kafka_mock_broker_set_up(mc, id);
    } else if (strcmp(cmd, "rtt") == 0) {
        if (argc != 3 || parse_int(argv[1], 1, o->brokers, &id) != 0 ||
            parse_int(argv[2], 0, 600000, &ms) != 0)
            return cm_buf_puts(out, "error: usage: rtt BROKER_ID MS\n"), -1;
        kerr = rd_kafka_mock_broker_set_rtt(mc, id, ms);
    } else if (strcmp(cmd, "error-push") == 0) {
        if (argc != 4 || parse_api_key(argv[1], &key) != 0 ||
            parse_int(argv[2], 1, 100000, &cnt) != 0 || parse_error(argv[3], &err) != 0)
            return cm_buf_puts(out, "error: usage: error-push API_KEY COUNT ERROR\n"), -1;
        rd_kafka_resp_err_t *errs = calloc((size_t)cnt, sizeof *errs);
        if (!errs)
            return cm_buf_puts(out, "error: out of memory\n"), -1;
        for (int i = 0; i < cnt; i++)
            errs[i] = err;
        rd_kafka_mock_push_request_errors_array(mc, key, (size_t)cnt, errs);
        free(errs);
        kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    } else if (strcmp(cmd, "error-clear") == 0) {
        if (argc != 2 || parse_api_key(argv[1], &key) != 0)
            return cm_buf_puts(out, "error: usage: error-clear API_KEY\n"), -1;
        rd_kafka_mock_clear_request_errors(mc, key);
        kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    } else if (strcmp(cmd, "topic-create") == 0) {
        if (argc != 3 || parse_int(argv[2], 1, 1000, &cnt) != 0)
            return cm_buf_puts(out, "error: usage: topic-create NAME PARTITIONS\n"), -1;
        kerr = rd_kafka_mock_topic_create(mc, argv[1], cnt, o->brokers < 3 ? o->brokers : 3);
    } else if (strcmp(cmd, "status") == 0) {
        return cm_buf_printf(out, "ok bootstrap=%s brokers=%d\n",
                             rd_kafka_mock_cluster_bootstraps(mc), o->brokers);
    } else if (strcmp(cmd, "help") == 0 || argc == 0) {
        return cm_buf_puts(out, "ok commands: broker-down ID | broker-up ID | rtt ID MS | "
                                "error-push API_KEY COUNT ERROR | error-clear API_KEY | "
                                "topic-create NAME PARTITIONS | status\n");
    } else {
        return cm_buf_printf(out, "error: unknown command \"%.64s\" (try help)\n", cmd), -1;
    }
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR)
        return cm_buf_printf(out, "error: %s\n", rd_kafka_err2str(kerr)), -1;
    cm_log_kv(CM_LOG_INFO, "fault control", "command", cmd, "arg1", argc > 1 ? argv[1] : NULL,
              "arg2", argc > 2 ? argv[2] : NULL, "arg3", argc > 3 ? argv[3] : NULL,
              (const char *)NULL);
    return cm_buf_puts(out, "ok\n");
}

/* Splits s in place on any of seps; at most max words. */
static int split(char *s, const char *seps, char **words, int max)
{
    int n = 0;
    while (*s && n < max) {
        s += strspn(s, seps);
        if (!*s)
            break;
        words[n++] = s;
        s += strcspn(s, seps);
        if (*s)
            *s++ = '\0';
    }
    return n;
}

/* One connection, one command: either a text line ("rtt 1 500\n") or an
 * HTTP request whose path carries the words ("POST /rtt/1/500"), so both
 * `echo ... >/dev/tcp/...` and curl work. */
static void serve_client(int fd, rd_kafka_mock_cluster_t *mc, const struct opts *o)
{
    char req[2048];
    size_t len = 0;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (len < sizeof req - 1) {
        ssize_t n = read(fd, req + len, sizeof req - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        req[len] = '\0';
        if (strchr(req, '\n'))
            break;
    }
    req[len] = '\0';
    req[strcspn(req, "\r\n")] = '\0';

    char *words[8];
    int http = strncmp(req, "GET ", 4) == 0 || strncmp(req, "POST ", 5) == 0;
    int argc;
    if (http) {
        char *path = strchr(req, ' ') + 1;
        path[strcspn(path, " ?")] = '\0';
        argc = split(path, "/", words, 8);
    } else {
        argc = split(req, " \t", words, 8);
    }
    struct cm_buf body;
    cm_buf_init(&body, 4096);
    int rc = run_command(mc, o, words, argc, &body);
    if (http) {
        char head[256];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n",
                         rc == 0 ? "200 OK" : "400 Bad Request", body.len);
        if (write(fd, head, (size_t)n) < 0)
            goto done;
    }
    if (body.len && write(fd, body.data, body.len) < 0)
        goto done;
done:
    cm_buf_release(&body);
}

static int listen_loopback(int port, int *bound_port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t sl = sizeof sa;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        close(fd);
        return -1;
    }
    *bound_port = ntohs(sa.sin_port);
    return fd;
}

int main(int argc, char **argv)
{
    struct opts o;
    char errstr[512], num[32];
    int rc = 1, lfd = -1, sfd = -1, cport = 0;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    sigset_t sigs;

    cm_log_init("devkafka", CM_LOG_INFO);
    int prc = parse_opts(argc, argv, &o);
    if (prc != 0)
        return prc > 0 ? 0 : 2;

    /* Block the signals before librdkafka starts threads, so they inherit
     * the mask and only the signalfd below sees SIGTERM/SIGINT. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (sfd < 0) {
        cm_error("signalfd: %s", strerror(errno));
        goto out;
    }

    /* The mock cluster lives inside a client handle: a producer that never
     * connects anywhere hosts it. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, rk_log);
    /* The mock's connections take their socket options from this handle:
     * without TCP_NODELAY a response written while the previous one is
     * unacknowledged waits for the client's delayed ACK (~40 ms), which is
     * what pipelined requests (max.in.flight > 1) ran into. */
    if (rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK)
        cm_warn("devkafka: %s", errstr);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        cm_error("rd_kafka_new: %s", errstr);
        goto out;
    }
    mc = rd_kafka_mock_cluster_new(rk, o.brokers);
    if (!mc) {
        cm_error("rd_kafka_mock_cluster_new failed");
        goto out;
    }
    for (int i = 0; i < o.ntopics; i++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
            mc, o.topics[i].name, o.topics[i].partitions, o.brokers < 3 ? o.brokers : 3);
        if (err) {
            cm_error("topic %s: %s", o.topics[i].name, rd_kafka_err2str(err));
            goto out;
        }
        snprintf(num, sizeof num, "%d", o.topics[i].partitions);
        cm_log_kv(CM_LOG_INFO, "topic created", "topic", o.topics[i].name, "partitions", num,
                  (const char *)NULL);
    }
    if (o.control_port >= 0) {
        lfd = listen_loopback(o.control_port, &cport);
        if (lfd < 0) {
            cm_error("control port %d: %s", o.control_port, strerror(errno));
            goto out;
        }
        snprintf(num, sizeof num, "%d", cport);
        if (o.control_file && write_atomic(o.control_file, num) != 0) {
            cm_error("cannot write %s: %s", o.control_file, strerror(errno));
            goto out;
        }
    }
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    if (o.bootstrap_file && write_atomic(o.bootstrap_file, bootstrap) != 0) {
        cm_error("cannot write %s: %s", o.bootstrap_file, strerror(errno));
        goto out;
    }
    char nb[16];
    snprintf(nb, sizeof nb, "%d", o.brokers);
    cm_log_kv(CM_LOG_INFO, "devkafka ready", "bootstrap", bootstrap, "brokers", nb, "control_port",
              lfd >= 0 ? num : NULL, (const char *)NULL);

    for (;;) {
        struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN}, {.fd = lfd, .events = POLLIN}};
        if (poll(pf, lfd >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            cm_error("poll: %s", strerror(errno));
            goto out;
        }
        if (pf[0].revents) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                cm_log_kv(CM_LOG_INFO, "stopping", "signal", strsignal((int)si.ssi_signo),
                          (const char *)NULL);
            break;
        }
        if (lfd >= 0 && pf[1].revents) {
            int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd >= 0) {
                serve_client(cfd, mc, &o);
                close(cfd);
            }
        }
    }
    rc = 0;
out:
    if (lfd >= 0)
        close(lfd);
    if (sfd >= 0)
        close(sfd);
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (rk)
        rd_kafka_destroy(rk);
    if (rc == 0 && o.bootstrap_file)
        unlink(o.bootstrap_file);
    return rc;
}
