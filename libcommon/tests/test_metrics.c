/* Metrics registry: exposition format, label escaping, concurrency. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/process_metrics.h"
#include "common/banned.h"

static int setup(void **state)
{
    (void)state;
    cm_metrics_reset();
    return 0;
}

static char *render(struct cm_buf *b)
{
    cm_buf_init(b, 0);
    assert_int_equal(cm_metrics_render(b), 0);
    return b->data ? b->data : (char *)"";
}

static void test_counter_exact_format(void **state)
{
    (void)state;
    struct cm_metric *c =
        cm_metric_counter("http_requests_total", "Requests served.", "route,method,code");
    assert_non_null(c);
    cm_counter_add(c, 1, "/v1/orders/{id}", "GET", "200");
    cm_counter_add(c, 2, "/v1/orders/{id}", "GET", "200");
    cm_counter_add(c, 1, "unmatched", "POST", "404");
    struct cm_buf b;
    assert_string_equal(
        render(&b), "# HELP http_requests_total Requests served.\n"
                    "# TYPE http_requests_total counter\n"
                    "http_requests_total{route=\"/v1/orders/{id}\",method=\"GET\",code=\"200\"} 3\n"
                    "http_requests_total{route=\"unmatched\",method=\"POST\",code=\"404\"} 1\n");
    cm_buf_release(&b);
}

static void test_gauge_no_labels_and_escaping(void **state)
{
    (void)state;
    struct cm_metric *g = cm_metric_gauge("in_flight", "Help with \\ and\nnewline.", NULL);
    struct cm_metric *e = cm_metric_gauge("odd", "x", "v");
    cm_gauge_set(g, 5);
    cm_gauge_add(g, -2.5);
    cm_gauge_set(e, 1, "a\"b\\c\nd");
    struct cm_buf b;
    assert_string_equal(render(&b), "# HELP in_flight Help with \\\\ and\\nnewline.\n"
                                    "# TYPE in_flight gauge\n"
                                    "in_flight 2.5\n"
                                    "# HELP odd x\n"
                                    "# TYPE odd gauge\n"
                                    "odd{v=\"a\\\"b\\\\c\\nd\"} 1\n");
    cm_buf_release(&b);
}

static void test_histogram_exact_format(void **state)
{
    (void)state;
    static const double bounds[] = {0.1, 0.5, 1};
    struct cm_metric *h = cm_metric_histogram("lat_seconds", "Latency.", "route", bounds, 3);
    assert_non_null(h);
    cm_histogram_observe(h, 0.05, "/a");
    cm_histogram_observe(h, 0.1, "/a"); /* le is inclusive */
    cm_histogram_observe(h, 0.7, "/a");
    cm_histogram_observe(h, 3, "/a");
    struct cm_buf b;
    assert_string_equal(render(&b), "# HELP lat_seconds Latency.\n"
                                    "# TYPE lat_seconds histogram\n"
                                    "lat_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
                                    "lat_seconds_bucket{route=\"/a\",le=\"0.5\"} 2\n"
                                    "lat_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
                                    "lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
                                    "lat_seconds_sum{route=\"/a\"} 3.85\n"
                                    "lat_seconds_count{route=\"/a\"} 4\n");
    double v;
    assert_int_equal(cm_metric_value(h, &v, "/a"), 0);
    assert_true(v == 4);
    cm_buf_release(&b);
}

static void test_histogram_default_buckets_no_labels(void **state)
{
    (void)state;
    struct cm_metric *h = cm_metric_histogram("d_seconds", "D.", "", NULL, 0);
    cm_histogram_observe(h, 0.0001);
    struct cm_buf b;
    char *out = render(&b);
    assert_non_null(strstr(out, "d_seconds_bucket{le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(out, "d_seconds_bucket{le=\"10\"} 1\n"));
    assert_non_null(strstr(out, "d_seconds_bucket{le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(out, "d_seconds_sum 0.0001\nd_seconds_count 1\n"));
    cm_buf_release(&b);
}

static void test_registration_idempotent_and_clash(void **state)
{
    (void)state;
    struct cm_metric *a = cm_metric_counter("x_total", "X.", "a,b");
    assert_ptr_equal(cm_metric_counter("x_total", "X.", "a,b"), a);
    assert_null(cm_metric_gauge("x_total", "X.", "a,b"));
    assert_null(cm_metric_counter("x_total", "X.", "a"));
    static const double b1[] = {1, 2}, b2[] = {1, 3};
    assert_non_null(cm_metric_histogram("h", "H.", NULL, b1, 2));
    assert_null(cm_metric_histogram("h", "H.", NULL, b2, 2));
}

static void test_bad_names_rejected(void **state)
{
    (void)state;
    static const double desc[] = {2, 1};
    assert_null(cm_metric_counter("1abc", "bad", NULL));
    assert_null(cm_metric_counter("a-b", "bad", NULL));
    assert_null(cm_metric_counter("", "bad", NULL));
    assert_null(cm_metric_counter(NULL, "bad", NULL));
    assert_null(cm_metric_counter("ok1", "bad label", "a-b"));
    assert_null(cm_metric_counter("ok2", "reserved", "__x"));
    assert_null(cm_metric_counter("ok3", "dup", "a,a"));
    assert_null(cm_metric_counter("ok4", "empty", "a,"));
    assert_null(cm_metric_counter("ok5", "too many", "a,b,c,d,e,f,g,h,i"));
    assert_null(cm_metric_histogram("ok6", "le", "le", NULL, 0));
    assert_null(cm_metric_histogram("ok7", "order", NULL, desc, 2));
    /* Updates on a failed registration are harmless. */
    cm_counter_add(NULL, 1);
    cm_gauge_set(NULL, 1);
    cm_histogram_observe(NULL, 1);
    double v;
    assert_int_equal(cm_metric_value(NULL, &v), -1);
}

static void test_counter_rejects_negative_and_wrong_kind(void **state)
{
    (void)state;
    struct cm_metric *c = cm_metric_counter("c_total", "C.", NULL);
    cm_counter_add(c, 2);
    cm_counter_add(c, -1);
    cm_gauge_set(c, 100);         /* wrong kind: ignored */
    cm_histogram_observe(c, 100); /* wrong kind: ignored */
    double v = 0;
    assert_int_equal(cm_metric_value(c, &v), 0);
    assert_true(v == 2);
    struct cm_metric *g = cm_metric_gauge("g", "G.", "k");
    assert_int_equal(cm_metric_value(g, &v, "missing"), -1);
}

static void test_format_value(void **state)
{
    (void)state;
    char b[40];
    cm_metrics_format_value(b, sizeof b, 0.1);
    assert_string_equal(b, "0.1");
    cm_metrics_format_value(b, sizeof b, 1e21);
    assert_string_equal(b, "1e+21");
    cm_metrics_format_value(b, sizeof b, 1.0 / 0.0);
    assert_string_equal(b, "+Inf");
    cm_metrics_format_value(b, sizeof b, 123456789);
    assert_string_equal(b, "123456789");
    cm_metrics_format_value(b, sizeof b, 0.00015);
    assert_string_equal(b, "0.00015");
    cm_metrics_format_value(b, sizeof b, -2.5);
    assert_string_equal(b, "-2.5");
    cm_metrics_format_value(b, sizeof b, 0.0 / 0.0);
    assert_string_equal(b, "NaN");
}

static void test_render_respects_cap(void **state)
{
    (void)state;
    struct cm_metric *c = cm_metric_counter("big_total", "B.", "k");
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "value-%d", i);
        cm_counter_add(c, 1, key);
    }
    struct cm_buf b;
    cm_buf_init(&b, 512);
    assert_int_equal(cm_metrics_render(&b), -1);
    cm_buf_release(&b);
}

#define THREADS 4
#define PER_THREAD 100000

static struct cm_metric *shared_c, *shared_h, *shared_g;

static void *hammer(void *arg)
{
    const char *route = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        cm_counter_add(shared_c, 1, route, "GET");
        cm_counter_add(shared_c, 1, "/shared", "GET");
        cm_histogram_observe(shared_h, 0.001, "/shared");
        cm_gauge_add(shared_g, 1);
        cm_gauge_add(shared_g, -1);
    }
    return NULL;
}

static void test_concurrent_updates_sum_exactly(void **state)
{
    (void)state;
    shared_c = cm_metric_counter("conc_total", "C.", "route,method");
    shared_h = cm_metric_histogram("conc_seconds", "H.", "route", NULL, 0);
    shared_g = cm_metric_gauge("conc_in_flight", "G.", NULL);
    static const char *const routes[THREADS] = {"/t0", "/t1", "/t2", "/t3"};
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, hammer, (void *)routes[i]);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    double v;
    assert_int_equal(cm_metric_value(shared_c, &v, "/shared", "GET"), 0);
    assert_true(v == (double)THREADS * PER_THREAD);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(cm_metric_value(shared_c, &v, routes[i], "GET"), 0);
        assert_true(v == PER_THREAD);
    }
    assert_int_equal(cm_metric_value(shared_h, &v, "/shared"), 0);
    assert_true(v == (double)THREADS * PER_THREAD);
    assert_int_equal(cm_metric_value(shared_g, &v), 0);
    assert_true(v == 0);
}

static int seen;
static void collect(void *ctx)
{
    (void)ctx;
    seen++;
}

static void test_collectors_run_once_per_render(void **state)
{
    (void)state;
    seen = 0;
    cm_metrics_on_collect(collect, NULL);
    cm_metrics_on_collect(collect, NULL); /* deduplicated */
    struct cm_buf b;
    render(&b);
    assert_int_equal(seen, 1);
    cm_buf_release(&b);
}

static void test_process_metrics(void **state)
{
    (void)state;
    assert_int_equal(cm_process_metrics_register("svc", "1.2.3"), 0);
    struct cm_buf b;
    char *out = render(&b);
    assert_non_null(strstr(out, "service_info{service=\"svc\",version=\"1.2.3\"} 1\n"));
    assert_non_null(strstr(out, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(out, "process_open_fds "));
    assert_non_null(strstr(out, "process_resident_memory_bytes "));
    assert_null(strstr(out, "process_resident_memory_bytes 0\n"));
    const char *st = strstr(out, "\nprocess_start_time_seconds ");
    assert_non_null(st);
    double start = strtod(st + 28, NULL);
    assert_true(start > 1.6e9 && start <= (double)time(NULL) + 1);
    cm_buf_release(&b);
}

int main(void)
{
    cm_log_init("test_metrics", CM_LOG_ERROR);
    /* Expected error lines would break the TAP stream on stdout. */
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    cm_log_set_fd(devnull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counter_exact_format, setup),
        cmocka_unit_test_setup(test_gauge_no_labels_and_escaping, setup),
        cmocka_unit_test_setup(test_histogram_exact_format, setup),
        cmocka_unit_test_setup(test_histogram_default_buckets_no_labels, setup),
        cmocka_unit_test_setup(test_registration_idempotent_and_clash, setup),
        cmocka_unit_test_setup(test_bad_names_rejected, setup),
        cmocka_unit_test_setup(test_counter_rejects_negative_and_wrong_kind, setup),
        cmocka_unit_test_setup(test_format_value, setup),
        cmocka_unit_test_setup(test_render_respects_cap, setup),
        cmocka_unit_test_setup(test_concurrent_updates_sum_exactly, setup),
        cmocka_unit_test_setup(test_collectors_run_once_per_render, setup),
        cmocka_unit_test_setup(test_process_metrics, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cm_metrics_reset();
    return rc;
}
