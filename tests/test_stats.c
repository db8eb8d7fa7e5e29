/* Statistics: exact counts after scripted sequences on one pinned thread, the
 * victim switched off, and the reports (text, JSON on demand and at exit). */
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/internal.h"

static int objs[64];
static _Atomic int freed;

static void free_obj(void *obj, void *arg)
{
    (void)arg;
    free(obj);
    atomic_fetch_add(&freed, 1);
}

static void *make(void *arg)
{
    (void)arg;
    return &objs[63];
}

#define EXPECT(s, g, pr, sh, st, vi, mi)                                                        \
    do {                                                                                       \
        ck_assert_uint_eq((s).gets, g);                                                        \
        ck_assert_uint_eq((s).hit_private, pr);                                                \
        ck_assert_uint_eq((s).hit_shared, sh);                                                 \
        ck_assert_uint_eq((s).hit_steal, st);                                                  \
        ck_assert_uint_eq((s).hit_victim, vi);                                                 \
        ck_assert_uint_eq((s).miss, mi);                                                       \
    } while (0)

START_TEST(test_exact_counts)
{
    test_setenv("GCPOOL_GC", "sim");
    test_pin_to_one_cpu();
    gcpool_options_t o = {.new_fn = make, .name = "scripted"};
    gcpool_t *p = gcpool_create(&o);
    gcpool_stats_t s;
    for (int i = 0; i < 3; i++)
        gcpool_put(p, &objs[i]); /* private, then two on the shared head */
    for (int i = 0; i < 3; i++)
        gcpool_get(p);
    gcpool_read_stats(p, &s);
    EXPECT(s, 3, 1, 2, 0, 0, 0);
    ck_assert_uint_eq(s.puts, 3);
    gcpool_get(p); /* a miss: new_fn */
    gcpool_read_stats(p, &s);
    EXPECT(s, 4, 1, 2, 0, 0, 1);
    ck_assert_uint_eq(s.news, 1);
    ck_assert_uint_eq(s.cached, 0);
    /* Five cached, one cycle: all five come back from the victim. */
    for (int i = 0; i < 5; i++)
        gcpool_put(p, &objs[i]);
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.cached, 5);
    ck_assert_uint_eq(s.in_victim, 0);
    gcpool_collect();
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.cached, 0);
    ck_assert_uint_eq(s.in_victim, 5);
    ck_assert_ptr_nonnull(gcpool_get(p));
    gcpool_put(p, &objs[10]);
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.cached, 1);
    ck_assert_uint_eq(s.in_victim, 4);
    ck_assert_ptr_eq(gcpool_get(p), &objs[10]);
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_nonnull(gcpool_get(p));
    gcpool_read_stats(p, &s);
    EXPECT(s, 10, 2, 2, 0, 5, 1);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_uint_eq(s.in_victim, 0);
    /* Five cached, two cycles: dropped, and the next get misses. */
    for (int i = 0; i < 5; i++)
        gcpool_put(p, &objs[i]);
    gcpool_collect();
    gcpool_collect();
    gcpool_get(p);
    gcpool_read_stats(p, &s);
    EXPECT(s, 11, 2, 2, 0, 5, 2);
    ck_assert_uint_eq(s.dropped, 5);
    ck_assert_uint_eq(s.news, 2);
    gcpool_destroy(p);
}
END_TEST

/* A reader that copies, as one of another process does (peek.h): the same
 * numbers as this process's direct reads, through the same code. */
static int copies;
static const void *read_copy(const struct gcp_peek *pk, const void *addr, size_t n, void *buf)
{
    (void)pk;
    if (!addr)
        return NULL;
    copies++;
    memcpy(buf, addr, n);
    return buf;
}

START_TEST(test_copying_reader_agrees)
{
    test_setenv("GCPOOL_GC", "sim");
    test_pin_to_one_cpu();
    gcpool_t *p = gcpool_create(NULL);
    for (int i = 0; i < 20; i++)
        gcpool_put(p, &objs[i]);
    gcpool_collect();
    for (int i = 0; i < 7; i++)
        gcpool_put(p, &objs[20 + i]);
    for (int i = 0; i < 9; i++)
        gcpool_get(p);
    struct gcp_peek copying = {.read = read_copy, .no_locals = gcp_no_locals};
    gcpool_stats_t direct, copied;
    gcpool_read_stats(p, &direct);
    copies = 0;
    struct gcpool seen;
    ck_assert_int_eq(gcp_stats_peek(&copying, p, &copied, &seen), 0);
    ck_assert_int_gt(copies, 3); /* the pool, its arrays, their rings */
    ck_assert_mem_eq(&direct, &copied, sizeof direct);
    ck_assert_uint_eq(direct.cached + direct.in_victim, 20 + 7 - 9);
    ck_assert_ptr_eq(seen.cur, p->cur);
    gcpool_destroy(p);
}
END_TEST

START_TEST(test_victim_off_drops_at_one_cycle)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_VICTIM", "0");
    test_pin_to_one_cpu();
    gcpool_t *p = gcpool_create(NULL);
    for (int i = 0; i < 5; i++)
        gcpool_put(p, &objs[i]);
    gcpool_collect();
    ck_assert_ptr_null(gcpool_get(p));
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.dropped, 5);
    EXPECT(s, 1, 0, 0, 0, 0, 1);
    gcpool_destroy(p);
}
END_TEST

START_TEST(test_steal_counted)
{
    test_setenv("GCPOOL_GC", "sim");
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        return;
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    int cpus[2], n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    if (n < 2)
        return;
    gcpool_t *p = gcpool_create(NULL);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus[0], &one);
    sched_setaffinity(0, sizeof one, &one);
    for (int i = 0; i < 4; i++)
        gcpool_put(p, &objs[i]); /* private + 3 shared on the first CPU's local */
    CPU_ZERO(&one);
    CPU_SET(cpus[1], &one);
    sched_setaffinity(0, sizeof one, &one);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(gcpool_get(p)); /* from the other local's tail */
    ck_assert_ptr_null(gcpool_get(p)); /* private slots are never stolen */
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    EXPECT(s, 4, 0, 0, 3, 0, 1);
    gcpool_destroy(p);
}
END_TEST

/* Reads a whole file into a malloc'd string. */
static char *slurp(FILE *f)
{
    fflush(f);
    rewind(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    return buf;
}

/* A file's contents (malloc'd); the file is removed. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *doc = strdup(slurp(f));
    fclose(f);
    unlink(path);
    return doc;
}

static uint64_t json_number(const char *doc, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *at = strstr(doc, pat);
    ck_assert_msg(at != NULL, "key %s missing in %s", key, doc);
    return strtoull(at + strlen(pat), NULL, 10);
}

START_TEST(test_json_report)
{
    test_setenv("GCPOOL_GC", "sim");
    test_pin_to_one_cpu();
    gcpool_options_t o = {.name = "json \"quoted\""};
    gcpool_t *p = gcpool_create(&o);
    gcpool_put(p, &objs[0]);
    gcpool_put(p, &objs[1]);
    gcpool_get(p);
    gcpool_collect();
    FILE *f = tmpfile();
    gcpool_stats_print(f, GCPOOL_STATS_JSON);
    char *doc = slurp(f);
    ck_assert_msg(doc[0] == '{' && strstr(doc, "\"pools\": ["), "not a report: %s", doc);
    ck_assert_msg(strstr(doc, "\"name\": \"json \\\"quoted\\\"\""), "name not escaped: %s", doc);
    ck_assert_str_eq(strstr(doc, "\"version\": \"") + 12, strstr(doc, "\"version\": \"") + 12);
    ck_assert_uint_eq(json_number(doc, "cycles"), 1);
    ck_assert_uint_eq(json_number(doc, "gets"), 1);
    ck_assert_uint_eq(json_number(doc, "puts"), 2);
    ck_assert_uint_eq(json_number(doc, "hit_private"), 1);
    ck_assert_uint_eq(json_number(doc, "moved_to_victim"), 1);
    /* Balanced braces and brackets, outside strings. */
    int depth = 0;
    bool in_string = false;
    for (const char *c = doc; *c; c++) {
        if (in_string) {
            if (*c == '\\')
                c++;
            else if (*c == '"')
                in_string = false;
        } else if (*c == '"') {
            in_string = true;
        } else if (*c == '{' || *c == '[') {
            depth++;
        } else if (*c == '}' || *c == ']') {
            ck_assert_int_gt(depth, 0);
            depth--;
        }
    }
    ck_assert_int_eq(depth, 0);
    fclose(f);
    gcpool_destroy(p);
}
END_TEST

START_TEST(test_text_report)
{
    test_setenv("GCPOOL_GC", "sim");
    gcpool_options_t o = {.name = "textpool"};
    gcpool_t *p = gcpool_create(&o);
    gcpool_t *unnamed = gcpool_create(NULL);
    gcpool_put(p, &objs[0]);
    gcpool_put(unnamed, &objs[1]);
    FILE *f = tmpfile();
    gcpool_stats_print(f, GCPOOL_STATS_TEXT);
    char *doc = slurp(f);
    ck_assert_msg(strstr(doc, "textpool") && strstr(doc, "pool#"), "report: %s", doc);
    ck_assert_msg(strstr(doc, "victim"), "no victim column: %s", doc);
    fclose(f);
    gcpool_destroy(p);
    gcpool_destroy(unnamed);
}
END_TEST

START_TEST(test_report_at_exit)
{
    char path[] = "/tmp/gcpool-stats-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("GCPOOL_STATS", "json", 1);
        setenv("GCPOOL_STATS_FILE", path, 1);
        setenv("GCPOOL_GC", "sim", 1);
        gcp_env_reload();
        gcpool_options_t o = {.name = "at-exit"};
        gcpool_t *p = gcpool_create(&o);
        gcpool_put(p, &objs[0]);
        gcpool_get(p);
        /* A pool destroyed before exit is in the report too. */
        gcpool_options_t od = {.name = "gone"};
        gcpool_t *d = gcpool_create(&od);
        gcpool_put(d, &objs[1]);
        gcpool_put(d, &objs[2]);
        gcpool_destroy(d);
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *doc = read_file(path);
    ck_assert_msg(strstr(doc, "\"name\": \"at-exit\""), "report: %s", doc);
    ck_assert_uint_eq(json_number(doc, "gets"), 1);
    const char *gone = strstr(doc, "\"name\": \"gone\"");
    ck_assert_msg(gone != NULL, "destroyed pool missing: %s", doc);
    /* As the program left it: destroy counts nothing, neither the object it
     * takes from the private slot as a get nor what it releases as drops. */
    ck_assert_uint_eq(json_number(gone, "puts"), 2);
    ck_assert_uint_eq(json_number(gone, "gets"), 0);
    ck_assert_uint_eq(json_number(gone, "hit_private"), 0);
    ck_assert_uint_eq(json_number(gone, "dropped"), 0);
    ck_assert_msg(strstr(gone, "\"destroyed\": true"), "report: %s", doc);
    free(doc);
}
END_TEST

static void *make_buffer(void *arg)
{
    (void)arg;
    return malloc(64);
}

/* The README's example: 100 000 requests, one buffer each, then destroy.  The
 * destroyed pool's line reports exactly 100 000 gets (it said 100 001: the
 * buffer destroy took from the private slot counted as a hit). */
START_TEST(test_destroy_counts_nothing)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_STATS", "json"); /* keeps destroyed pools' lines */
    test_pin_to_one_cpu();
    gcpool_options_t o = {.new_fn = make_buffer, .free_fn = free_obj, .name = "scratch"};
    gcpool_t *p = gcpool_create(&o);
    for (int request = 0; request < 100000; request++) {
        char *buf = gcpool_get(p);
        buf[0] = (char)request;
        gcpool_put(p, buf);
    }
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.gets, 100000);
    gcpool_destroy(p);
    ck_assert_int_eq(atomic_load(&freed), 1); /* released to free_fn all the same */
    FILE *f = tmpfile();
    gcpool_stats_print(f, GCPOOL_STATS_JSON);
    const char *doc = slurp(f);
    const char *line = strstr(doc, "\"name\": \"scratch\"");
    ck_assert_msg(line && strstr(line, "\"destroyed\": true"), "report: %s", doc);
    ck_assert_uint_eq(json_number(line, "gets"), 100000);
    ck_assert_uint_eq(json_number(line, "puts"), 100000);
    ck_assert_uint_eq(json_number(line, "hit_private"), 99999);
    ck_assert_uint_eq(json_number(line, "miss"), 1);
    ck_assert_uint_eq(json_number(line, "news"), 1);
    ck_assert_uint_eq(json_number(line, "dropped"), 0);
    fclose(f);
}
END_TEST

/* moved_to_victim is in gcpool_stats_t, and both reports print the victim
 * hit rate computed from it (gcpool_victim_hit_rate). */
START_TEST(test_victim_hit_rate)
{
    test_setenv("GCPOOL_GC", "sim");
    test_pin_to_one_cpu();
    gcpool_options_t o = {.name = "victims"};
    gcpool_t *p = gcpool_create(&o);
    for (int i = 0; i < 8; i++)
        gcpool_put(p, &objs[i]);
    gcpool_collect(); /* all 8 to the victim */
    for (int i = 0; i < 2; i++)
        ck_assert_ptr_nonnull(gcpool_get(p));
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.moved_to_victim, 8);
    ck_assert_uint_eq(s.hit_victim, 2);
    ck_assert(gcpool_victim_hit_rate(&s) == 0.25);
    gcpool_collect(); /* the other 6 dropped; nothing in the pool moved */
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.moved_to_victim, 8);
    ck_assert_uint_eq(s.dropped, 6);

    FILE *f = tmpfile();
    gcpool_stats_print(f, GCPOOL_STATS_JSON);
    const char *doc = slurp(f);
    const char *line = strstr(doc, "\"name\": \"victims\"");
    ck_assert_ptr_nonnull(line);
    ck_assert_uint_eq(json_number(line, "moved_to_victim"), 8);
    ck_assert_msg(strstr(line, "\"victim_hit_rate\": 0.2500"), "report: %s", doc);
    fclose(f);
    f = tmpfile();
    gcpool_stats_print(f, GCPOOL_STATS_TEXT);
    doc = slurp(f);
    line = strstr(doc, "victims");
    ck_assert_ptr_nonnull(line);
    const char *eol = strchr(line, '\n');
    ck_assert_msg(eol && eol - 6 >= line && strncmp(eol - 6, " 25.0%", 6) == 0, "v-hit: %s", doc);
    ck_assert_msg(strstr(doc, "hit_victim / to-victim"), "no definition: %s", doc);
    fclose(f);
    gcpool_destroy(p);
}
END_TEST

/* gcpool_stats_print prints the report at exit: with GCPOOL_STATS set, the
 * destroyed pools too, the same lines; without it, nothing is kept of them. */
static void print_after_destroy(const char *stats, const char *exit_path, const char *print_path)
{
    if (stats)
        setenv("GCPOOL_STATS", stats, 1);
    else
        unsetenv("GCPOOL_STATS");
    setenv("GCPOOL_STATS_FILE", exit_path, 1);
    setenv("GCPOOL_GC", "sim", 1);
    gcp_env_reload();
    gcpool_options_t o = {.name = "short-lived"};
    gcpool_t *p = gcpool_create(&o);
    gcpool_put(p, &objs[0]);
    gcpool_put(p, &objs[1]);
    gcpool_get(p);
    gcpool_destroy(p);
    FILE *f = fopen(print_path, "w");
    gcpool_stats_print(f, GCPOOL_STATS_JSON);
    fclose(f);
    exit(0);
}

/* The variants: no report asked for, and GCPOOL_STATS=json. */
static const struct report_variant {
    const char *name;
    const char *stats; /* GCPOOL_STATS, or NULL: unset */
} report_variants[] = {{"no report", NULL}, {"json", "json"}};

START_TEST(test_print_agrees_with_report_at_exit)
{
    const struct report_variant *v = TEST_VARIANT(report_variants);
    char exit_path[] = "/tmp/gcpool-exit-XXXXXX", print_path[] = "/tmp/gcpool-print-XXXXXX";
    close(mkstemp(exit_path));
    close(mkstemp(print_path));
    pid_t pid = fork();
    if (pid == 0)
        print_after_destroy(v->stats, exit_path, print_path);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *at_exit = read_file(exit_path), *printed = read_file(print_path);
    const char *line = strstr(printed, "{\"name\": \"short-lived\"");
    if (!v->stats) {
        /* No report asked for: none at exit, and no line kept. */
        ck_assert_str_eq(at_exit, "");
        ck_assert_msg(!line, "printed: %s", printed);
    } else {
        ck_assert_msg(line, "printed: %s", printed);
        const char *end = strchr(line, '}');
        char want[512];
        snprintf(want, sizeof want, "%.*s", (int)(end - line + 1), line);
        ck_assert_msg(strstr(want, "\"destroyed\": true"), "printed: %s", printed);
        ck_assert_msg(strstr(at_exit, want), "at exit: %s\nprinted: %s", at_exit, printed);
    }
    free(at_exit);
    free(printed);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = test_tcase(s, "stats", 0);
    tcase_add_test(tc, test_exact_counts);
    tcase_add_test(tc, test_victim_off_drops_at_one_cycle);
    tcase_add_test(tc, test_copying_reader_agrees);
    tcase_add_test(tc, test_steal_counted);
    tcase_add_test(tc, test_json_report);
    tcase_add_test(tc, test_text_report);
    tcase_add_test(tc, test_report_at_exit);
    tcase_add_test(tc, test_destroy_counts_nothing);
    tcase_add_test(tc, test_victim_hit_rate);
    test_add_variants(tc, test_print_agrees_with_report_at_exit, report_variants);
    return s;
}

TEST_MAIN(make_suite)
