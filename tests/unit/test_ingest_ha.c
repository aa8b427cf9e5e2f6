/* test_ingest_ha.c - the HA-pair tracker (ingest/ha.c): election by the
 * first sample, standby samples dropped, failover judged by sample time
 * (a lagging sender catching up cannot flip the election; a silent elected
 * replica loses it after the timeout), the old replica's in-flight samples
 * up to the failover point, several clusters judged independently, the
 * table cap, and elections surviving a restart through the state file. */
#include <stdlib.h>
#include <unistd.h>
#include "ingest/clean.h"
#include "test.h"

#define S 1000 /* ms per second */

/* Judges samples at the given times (seconds, 0-terminated list) and returns
 * how many were kept; kept times are written to out (may be NULL). */
static size_t judge(rw_ha *ha, const char *cluster, const char *replica, const int64_t *secs,
                    int64_t *out, rw_ha_verdict *vout)
{
    rw_sample smp[64];
    size_t n = 0;
    while (secs[n]) {
        smp[n].t = secs[n] * S;
        smp[n].v = (double)n;
        n++;
    }
    rw_ha_verdict v;
    rw_ha_judge(ha, "t1", cluster, replica, NULL, 0, smp, n, &v);
    CHECK_INT(v.kept + v.dropped, v.untracked ? v.kept : n);
    for (size_t i = 0; out && i < v.kept; i++)
        out[i] = smp[i].t / S;
    if (vout)
        *vout = v;
    return v.kept;
}

#define T(...) ((const int64_t[]){__VA_ARGS__, 0})

static rw_ha *open_ha(const char *path)
{
    rw_ha_opts o = {.state_path = path, .failover_timeout_ms = 30 * S};
    rw_err e;
    rw_err_init(&e);
    rw_ha *ha = rw_ha_open(&o, &e);
    CHECK_MSG(ha != NULL, "%s", e.msg);
    return ha;
}

static void test_election(void)
{
    rw_ha *ha = open_ha(NULL);
    char buf[64];
    CHECK(!rw_ha_elected(ha, "t1", "c1", buf, sizeof buf));
    CHECK_INT(judge(ha, "c1", "a", T(100, 115), NULL, NULL), 2);
    CHECK(rw_ha_elected(ha, "t1", "c1", buf, sizeof buf));
    CHECK_STR(buf, "a");
    /* the standby, current or slightly ahead: dropped */
    CHECK_INT(judge(ha, "c1", "b", T(101, 116, 130, 145), NULL, NULL), 0);
    /* exactly newest + timeout is not yet a failover */
    CHECK_INT(judge(ha, "c1", "b", T(145), NULL, NULL), 0);
    CHECK_INT(judge(ha, "c1", "a", T(130), NULL, NULL), 1);
    /* another tenant is another election */
    rw_sample s = {100 * S, 1};
    rw_ha_verdict v;
    rw_ha_judge(ha, "t2", "c1", "b", NULL, 0, &s, 1, &v);
    CHECK_INT(v.kept, 1);
    CHECK(rw_ha_elected(ha, "t2", "c1", buf, sizeof buf));
    CHECK_STR(buf, "b");
    CHECK(rw_ha_elected(ha, "t1", "c1", buf, sizeof buf));
    CHECK_STR(buf, "a");
    rw_ha_close(ha);
}

static void test_failover_by_sample_time(void)
{
    rw_ha *ha = open_ha(NULL);
    int64_t kept[64];
    rw_ha_verdict v;
    CHECK_INT(judge(ha, "c1", "a", T(100), NULL, NULL), 1);
    /* a's last sample is at 100 s; b's samples up to 130 s are covered by a's
       timeout, the one at 131 s is not: failover in the middle of a series */
    CHECK_INT(judge(ha, "c1", "b", T(120, 130, 131, 140), kept, &v), 2);
    CHECK(v.failover);
    CHECK_INT(kept[0], 131);
    CHECK_INT(kept[1], 140);
    char buf[64];
    rw_ha_elected(ha, "t1", "c1", buf, sizeof buf);
    CHECK_STR(buf, "b");
    /* a's in-flight samples up to the failover point are still a's; later ones
       are not (b owns the time from 131 s) */
    CHECK_INT(judge(ha, "c1", "a", T(110, 125, 131, 132, 150), kept, &v), 3);
    CHECK_INT(kept[2], 131);
    CHECK(!v.failover);
    /* a coming back with current samples cannot flip it while b is current */
    CHECK_INT(judge(ha, "c1", "b", T(160), NULL, NULL), 1);
    CHECK_INT(judge(ha, "c1", "a", T(170, 185, 190), NULL, &v), 0);
    CHECK(!v.failover);
    rw_ha_info got = {0};
    rw_ha_close(ha);
    (void)got;
}

static void test_lagging_sender(void)
{
    rw_ha *ha = open_ha(NULL);
    rw_ha_verdict v;
    /* a is elected and current */
    CHECK_INT(judge(ha, "c1", "a", T(1000, 1015, 1030), NULL, NULL), 3);
    /* b was down and catches up on a long backlog: all of it is older than
       a's progress plus the timeout, however late it arrives (arrival time
       would have flipped the election here) */
    CHECK_INT(judge(ha, "c1", "b", T(700, 715, 730, 745, 760, 900, 1000, 1045, 1060), NULL, &v),
              0);
    CHECK(!v.failover);
    CHECK_INT(judge(ha, "c1", "a", T(1045, 1060), NULL, NULL), 2);
    /* a stops; b, now current, takes over once its samples pass 1060 + 30 */
    CHECK_INT(judge(ha, "c1", "b", T(1075, 1090, 1091, 1105), NULL, &v), 2);
    CHECK(v.failover);
    /* a restarts and replays a backlog: its data up to the failover point
       (1091) is taken - the store keeps only what is newer than it holds -
       and the rest is dropped; a cannot take the election back */
    CHECK_INT(judge(ha, "c1", "a", T(1061, 1076, 1091, 1106, 1121), NULL, &v), 3);
    CHECK(!v.failover);
    char buf[64];
    rw_ha_elected(ha, "t1", "c1", buf, sizeof buf);
    CHECK_STR(buf, "b");
    rw_ha_close(ha);
}

static int count_pairs;
static void each_cb(void *ctx, const rw_ha_info *in)
{
    count_pairs++;
    if (!strcmp(in->cluster, "c2")) {
        CHECK_STR(in->elected, "y");
        CHECK_INT(in->failovers, 0);
        CHECK_INT(in->accepted, 1);
        CHECK_INT(in->deduplicated, 1);
    }
}

static void test_clusters_and_cap(void)
{
    rw_ha_opts o = {.failover_timeout_ms = 30 * S, .max_clusters = 2};
    rw_err e;
    rw_err_init(&e);
    rw_ha *ha = rw_ha_open(&o, &e);
    /* a request mixing clusters: each series is judged by its own cluster */
    CHECK_INT(judge(ha, "c1", "x", T(100), NULL, NULL), 1);
    CHECK_INT(judge(ha, "c2", "y", T(100), NULL, NULL), 1);
    CHECK_INT(judge(ha, "c1", "y", T(101), NULL, NULL), 0);
    CHECK_INT(judge(ha, "c2", "x", T(101), NULL, NULL), 0);
    /* full: a third cluster passes through, never lost, and is reported */
    rw_ha_verdict v;
    CHECK_INT(judge(ha, "c3", "x", T(100), NULL, &v), 1);
    CHECK(v.untracked);
    CHECK_INT(judge(ha, "c3", "y", T(100), NULL, &v), 1);
    count_pairs = 0;
    rw_ha_each(ha, each_cb, NULL);
    CHECK_INT(count_pairs, 2);
    rw_ha_close(ha);
}

/* the standby's samples the elected replica never covered come back at the
 * failover: per series, only those newer than the old replica's newest */
static void test_backlog(void)
{
    rw_ha_opts o = {.failover_timeout_ms = 30 * S, .buffer_bytes = 1 << 20};
    rw_err e;
    rw_err_init(&e);
    rw_ha *ha = rw_ha_open(&o, &e);
    rw_label la[] = {{"__name__", "up"}, {"cluster", "c1"}, {"job", "x"}};
    rw_label lb[] = {{"__name__", "cpu"}, {"cluster", "c1"}, {"job", "x"}};
    rw_sample s1[] = {{100 * S, 1}};
    rw_ha_verdict v;
    rw_ha_judge(ha, "t", "c1", "a", la, 3, s1, 1, &v); /* a elected, newest 100 s */
    /* b: 90 s is covered by a (not kept), 105 and 120 s are not */
    rw_sample s2[] = {{90 * S, 1}, {105 * S, 2}, {120 * S, 3}};
    rw_ha_judge(ha, "t", "c1", "b", la, 3, s2, 3, &v);
    CHECK_INT(v.kept, 0);
    rw_sample s3[] = {{106 * S, 7}};
    rw_ha_judge(ha, "t", "c1", "b", lb, 3, s3, 1, &v);
    CHECK_INT(v.kept, 0);
    /* a advances to 110 s: b's 105 s samples are covered now */
    rw_sample s4[] = {{110 * S, 1}};
    rw_ha_judge(ha, "t", "c1", "a", la, 3, s4, 1, &v);
    /* b at 141 s: takes over; the backlog holds what a never covered */
    rw_sample s5[] = {{141 * S, 4}};
    rw_ha_judge(ha, "t", "c1", "b", la, 3, s5, 1, &v);
    CHECK(v.failover);
    CHECK_INT(v.kept, 1);
    CHECK(v.backlog != NULL);
    if (v.backlog) {
        size_t total = 0;
        for (size_t i = 0; i < v.backlog->n; i++) {
            const rw_ha_backlog_series *x = &v.backlog->series[i];
            total += x->nsamples;
            for (size_t k = 0; k < x->nsamples; k++)
                CHECK(x->samples[k].t > 110 * S);
            if (!strcmp(x->labels[0].value, "up"))
                CHECK(x->nsamples == 1 && x->samples[0].t == 120 * S);
        }
        CHECK_INT(total, 1); /* up@120; up@105 and cpu@106 were covered by a's 110 */
        rw_ha_backlog_free(v.backlog);
    }
    /* no buffer configured: nothing is kept */
    rw_ha_close(ha);
    rw_ha_opts o2 = {.failover_timeout_ms = 30 * S};
    ha = rw_ha_open(&o2, &e);
    rw_ha_judge(ha, "t", "c1", "a", la, 3, s1, 1, &v);
    rw_sample s6[] = {{120 * S, 3}};
    rw_ha_judge(ha, "t", "c1", "b", la, 3, s6, 1, &v);
    rw_ha_judge(ha, "t", "c1", "b", la, 3, s5, 1, &v);
    CHECK(v.failover && v.backlog == NULL);
    rw_ha_close(ha);
}

static void test_persistence(void)
{
    char dir[] = "/tmp/rwgate-ha-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/ha_elections", dir);
    rw_ha *ha = open_ha(path);
    CHECK_INT(judge(ha, "c1", "a", T(100), NULL, NULL), 1);
    CHECK_INT(judge(ha, "c1", "b", T(140), NULL, NULL), 1); /* failover to b */
    CHECK_INT(judge(ha, "odd cluster\n%", "r 1", T(100), NULL, NULL), 1);
    rw_ha_close(ha); /* persists */
    ha = open_ha(path);
    char buf[64];
    CHECK(rw_ha_elected(ha, "t1", "c1", buf, sizeof buf));
    CHECK_STR(buf, "b");
    CHECK(rw_ha_elected(ha, "t1", "odd cluster\n%", buf, sizeof buf));
    CHECK_STR(buf, "r 1");
    /* the restored state judges as before the restart: a's data after the
       failover point is not taken, a cannot flip it with samples near b's */
    CHECK_INT(judge(ha, "c1", "a", T(141, 150), NULL, NULL), 0);
    CHECK_INT(judge(ha, "c1", "a", T(140), NULL, NULL), 1);
    CHECK_INT(judge(ha, "c1", "b", T(155), NULL, NULL), 1);
    rw_err e;
    rw_err_init(&e);
    CHECK(rw_ha_persist(ha, &e) == RW_OK);
    rw_ha_close(ha);
    /* a corrupt file is an error naming the line, not an empty table */
    FILE *f = fopen(path, "w");
    fputs("# header\n.t .c .a 1 . 2 3 4\n.t .c broken\n", f);
    fclose(f);
    rw_ha_opts o = {.state_path = path};
    rw_err_init(&e);
    CHECK(rw_ha_open(&o, &e) == NULL);
    CHECK_MSG(strstr(e.msg, ":3:") != NULL, "%s", e.msg);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    RUN(test_election);
    RUN(test_failover_by_sample_time);
    RUN(test_lagging_sender);
    RUN(test_clusters_and_cap);
    RUN(test_backlog);
    RUN(test_persistence);
    TEST_DONE();
}
