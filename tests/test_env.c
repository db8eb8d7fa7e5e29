/* The GCPOOL_* variables (lib/env.c): defaults, every bad value warned once and
 * replaced by the default, good values parsed, the RING pair, unknown names,
 * the printed forms, and read-once.  Check forks per test, so each test's
 * setenv stays in its own process. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* environ, open_memstream */
#endif
#include <pthread.h>
#include <unistd.h>

#include "tests/internal.h"

/* Every GCPOOL_* variable removed, whatever the caller's environment holds. */
static void clean_env(void)
{
    for (char **e = environ; *e;) {
        if (strncmp(*e, "GCPOOL_", 7) == 0) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
            unsetenv(name);
            e = environ; /* unsetenv moved the entries */
        } else {
            e++;
        }
    }
}

/* Runs fn with fd 2 sent to a temporary file; returns what it wrote. */

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static const char *text(enum gcp_env_id id)
{
    static char buf[64];
    return gcp_env_text(id, buf, sizeof buf);
}

START_TEST(defaults)
{
    static const char *const want[GCP_ENV_COUNT] = {"auto", "1", "auto", "topology", "chain", "off",
                                                     "",     "0", "0",    "8",        "1024",  "0",
                                                     "256",  "4194304", "100", "4194304",
                                                     "100",  "",        "10",  "",  "1", "0"};
    ck_assert_str_eq(test_capture_stderr(gcp_env_reload), "");
    for (int id = 0; id < GCP_ENV_COUNT; id++) {
        ck_assert_str_eq(text(id), want[id]);
        ck_assert_ptr_nonnull(gcp_env_name(id));
        ck_assert_int_eq(strncmp(gcp_env_name(id), "GCPOOL_", 7), 0);
    }
    ck_assert_int_eq(gcp_env_long(GCP_ENV_GC), GCP_GC_AUTO);
    ck_assert_int_eq(gcp_env_long(GCP_ENV_VICTIM), 1);
    ck_assert_int_eq(gcp_env_long(GCP_ENV_STATS), GCP_STATS_OFF);
    ck_assert_ptr_null(gcp_env_str(GCP_ENV_STATS_FILE));
    ck_assert_int_eq(gcp_env_long(GCP_ENV_RING_MIN), 8);
    ck_assert_int_eq(gcp_env_long(GCP_ENV_RING_MAX), 1024);
    ck_assert_int_eq(gcp_env_long(GCP_ENV_DEBUG), 0);
    ck_assert_int_eq(gcp_env_long(GCP_ENV_MAX_CACHED), 0);
    ck_assert_str_eq(gcp_env_name(GCP_ENV_SIM_INTERVAL_MS), "GCPOOL_SIM_INTERVAL_MS");
    ck_assert_ptr_null(gcp_env_name(GCP_ENV_COUNT));
    ck_assert_int_eq(gcp_env_long(GCP_ENV_COUNT), 0);
}
END_TEST

static const struct bad {
    enum gcp_env_id id;
    const char *value, *def;
} bad[] = {
    {GCP_ENV_GC, "", "auto"},           {GCP_ENV_GC, "boehm2", "auto"},
    {GCP_ENV_GC, "1", "auto"},          {GCP_ENV_VICTIM, "maybe", "1"},
    {GCP_ENV_VICTIM, "", "1"},          {GCP_ENV_VICTIM, "2", "1"},
    {GCP_ENV_VICTIM, "-1", "1"},        {GCP_ENV_VICTIM, "yes please", "1"},
    {GCP_ENV_PIN, "futex", "auto"},     {GCP_ENV_PIN, "", "auto"},
    {GCP_ENV_STEAL, "random", "topology"}, {GCP_ENV_STEAL, "", "topology"},
    {GCP_ENV_SHARED, "lockfree", "chain"}, {GCP_ENV_SHARED, "", "chain"},
    {GCP_ENV_STATS, "xml", "off"},      {GCP_ENV_STATS, "on", "off"},
    {GCP_ENV_STATS, "", "off"},         {GCP_ENV_STATS_FILE, "", "(unset)"},
    {GCP_ENV_SIM_NEW, "-1", "0"},       {GCP_ENV_SIM_NEW, "2147483648", "0"},
    {GCP_ENV_SIM_NEW, "12x", "0"},      {GCP_ENV_SIM_NEW, "", "0"},
    {GCP_ENV_SIM_NEW, " 12", "0"},      {GCP_ENV_SIM_NEW, "+5", "0"},
    {GCP_ENV_SIM_NEW, "0x10", "0"},     {GCP_ENV_SIM_NEW, "1.5", "0"},
    {GCP_ENV_SIM_NEW, "99999999999999999999999", "0"},
    {GCP_ENV_SIM_INTERVAL_MS, "86400001", "0"}, {GCP_ENV_SIM_INTERVAL_MS, "-5", "0"},
    {GCP_ENV_SIM_INTERVAL_MS, "abc", "0"}, {GCP_ENV_SIM_INTERVAL_MS, "", "0"},
    {GCP_ENV_RING_MIN, "7", "8"},       {GCP_ENV_RING_MIN, "1", "8"},
    {GCP_ENV_RING_MIN, "0", "8"},       {GCP_ENV_RING_MIN, "2097152", "8"},
    {GCP_ENV_RING_MIN, "8x", "8"},      {GCP_ENV_RING_MIN, "-8", "8"},
    {GCP_ENV_RING_MIN, "", "8"},        {GCP_ENV_RING_MAX, "3", "1024"},
    {GCP_ENV_RING_MAX, "33554432", "1024"}, {GCP_ENV_RING_MAX, "0", "1024"},
    {GCP_ENV_RING_MAX, "", "1024"},     {GCP_ENV_DEBUG, "2", "0"},
    {GCP_ENV_DEBUG, "debug", "0"},      {GCP_ENV_DEBUG, "", "0"},
    {GCP_ENV_SIM_GOGC, "-1", "100"},    {GCP_ENV_SIM_GOGC, "", "100"},
    {GCP_ENV_SIM_GOGC, "1000001", "100"}, {GCP_ENV_SIM_GOGC, "of", "100"},
    {GCP_ENV_SIM_GOGC, "50%", "100"},   {GCP_ENV_SIM_MIN_HEAP, "0", "4194304"},
    {GCP_ENV_SIM_MIN_HEAP, "4M", "4194304"}, {GCP_ENV_SIM_MIN_HEAP, "", "4194304"},
    {GCP_ENV_SIM_MIN_HEAP, "1099511627777", "4194304"},
    {GCP_ENV_CYCLE_EVERY, "0", "1"},    {GCP_ENV_CYCLE_EVERY, "-2", "1"},
    {GCP_ENV_CYCLE_EVERY, "1000001", "1"}, {GCP_ENV_CYCLE_EVERY, "2x", "1"},
    {GCP_ENV_CYCLE_EVERY, "", "1"},     {GCP_ENV_CYCLE_EVERY, "off", "1"},
    {GCP_ENV_PRESSURE_MS, "-1", "100"}, {GCP_ENV_PRESSURE_MS, "86400001", "100"},
    {GCP_ENV_PRESSURE_MS, "fast", "100"}, {GCP_ENV_PRESSURE_FILE, "", "(unset)"},
    {GCP_ENV_PRESSURE_AVG10, "101", "10"}, {GCP_ENV_PRESSURE_AVG10, "1.5", "10"},
    {GCP_ENV_PRESSURE_AVG10, "", "10"}, {GCP_ENV_PRESSURE_CGROUP, "", "(unset)"},
    {GCP_ENV_MAX_CACHED, "-1", "0"},    {GCP_ENV_MAX_CACHED, "1099511627777", "0"},
    {GCP_ENV_MAX_CACHED, "10k", "0"},   {GCP_ENV_MAX_CACHED, "", "0"},
    {GCP_ENV_MAX_CACHED, "none", "0"},
};

START_TEST(bad_value)
{
    const struct bad *b = &bad[_i];
    const char *name = gcp_env_name(b->id);
    char want[256];
    setenv(name, b->value, 1);
    const char *err = test_capture_stderr(gcp_env_reload);
    ck_assert_msg(lines(err) == 1, "%s=%s: want one line, got \"%s\"", name, b->value, err);
    snprintf(want, sizeof want, "gcpool: %s=%s ", name, b->value);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got \"%s\"", err);
    snprintf(want, sizeof want, "; using the default %s\n", b->def);
    ck_assert_msg(strstr(err, want), "got \"%s\"", err);
    ck_assert_str_eq(text(b->id), strcmp(b->def, "(unset)") ? b->def : "");
}
END_TEST

/* The warning stays one line whatever the value holds. */
START_TEST(bad_value_one_line)
{
    setenv("GCPOOL_SIM_NEW", "1\n2", 1);
    const char *err = test_capture_stderr(gcp_env_reload);
    ck_assert_int_eq(lines(err), 1);
    ck_assert_ptr_nonnull(strstr(err, "GCPOOL_SIM_NEW=1\\x0a2 "));
    char huge[4096];
    memset(huge, 'z', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    setenv("GCPOOL_GC", huge, 1);
    ck_assert_int_eq(lines(test_capture_stderr(gcp_env_reload)), 2);
    ck_assert_int_eq(gcp_env_long(GCP_ENV_GC), GCP_GC_AUTO);
}
END_TEST

static const struct good {
    enum gcp_env_id id;
    const char *value;
    long want;
} good[] = {
    {GCP_ENV_GC, "auto", GCP_GC_AUTO},        {GCP_ENV_GC, "boehm", GCP_GC_BOEHM},
    {GCP_ENV_GC, "sim", GCP_GC_SIM},          {GCP_ENV_GC, "SIM", GCP_GC_SIM},
    {GCP_ENV_VICTIM, "0", 0},                 {GCP_ENV_VICTIM, "1", 1},
    {GCP_ENV_VICTIM, "false", 0},             {GCP_ENV_VICTIM, "TRUE", 1},
    {GCP_ENV_VICTIM, "No", 0},                {GCP_ENV_VICTIM, "yes", 1},
    {GCP_ENV_VICTIM, "OFF", 0},               {GCP_ENV_VICTIM, "on", 1},
    {GCP_ENV_PIN, "auto", GCP_PIN_AUTO},      {GCP_ENV_PIN, "rseq", GCP_PIN_RSEQ},
    {GCP_ENV_PIN, "lock", GCP_PIN_LOCK},      {GCP_ENV_STEAL, "topology", 0},
    {GCP_ENV_STEAL, "roundrobin", 1},         {GCP_ENV_SHARED, "chain", GCP_SHARED_CHAIN},
    {GCP_ENV_SHARED, "locked", GCP_SHARED_LOCKED}, {GCP_ENV_STATS, "off", GCP_STATS_OFF},
    {GCP_ENV_STATS, "text", GCP_STATS_TEXT_}, {GCP_ENV_STATS, "json", GCP_STATS_JSON_},
    {GCP_ENV_SIM_NEW, "0", 0},                {GCP_ENV_SIM_NEW, "1", 1},
    {GCP_ENV_SIM_NEW, "2147483647", 2147483647}, {GCP_ENV_SIM_NEW, "007", 7},
    {GCP_ENV_SIM_INTERVAL_MS, "0", 0},        {GCP_ENV_SIM_INTERVAL_MS, "86400000", 86400000},
    {GCP_ENV_RING_MIN, "2", 2},               {GCP_ENV_RING_MIN, "8", 8},
    {GCP_ENV_RING_MIN, "1024", 1024},         {GCP_ENV_RING_MAX, "8", 8},
    {GCP_ENV_RING_MAX, "16777216", 16777216}, {GCP_ENV_DEBUG, "1", 1},
    {GCP_ENV_DEBUG, "off", 0},                {GCP_ENV_DEBUG, "Yes", 1},
    {GCP_ENV_SIM_GOGC, "off", 0},             {GCP_ENV_SIM_GOGC, "OFF", 0},
    {GCP_ENV_SIM_GOGC, "0", 0},               {GCP_ENV_SIM_GOGC, "50", 50},
    {GCP_ENV_SIM_GOGC, "1000000", 1000000},   {GCP_ENV_SIM_MIN_HEAP, "1", 1},
    {GCP_ENV_SIM_MIN_HEAP, "1099511627776", 1099511627776L},
    {GCP_ENV_CYCLE_EVERY, "1", 1},            {GCP_ENV_CYCLE_EVERY, "4", 4},
    {GCP_ENV_CYCLE_EVERY, "1000000", 1000000},
    {GCP_ENV_PRESSURE_MS, "0", 0},            {GCP_ENV_PRESSURE_MS, "86400000", 86400000},
    {GCP_ENV_PRESSURE_AVG10, "0", 0},         {GCP_ENV_PRESSURE_AVG10, "100", 100},
    {GCP_ENV_MAX_CACHED, "off", 0},           {GCP_ENV_MAX_CACHED, "0", 0},
    {GCP_ENV_MAX_CACHED, "1", 1},             {GCP_ENV_MAX_CACHED, "1099511627776", 1099511627776L},
};

START_TEST(good_value)
{
    const struct good *g = &good[_i];
    setenv(gcp_env_name(g->id), g->value, 1);
    ck_assert_str_eq(test_capture_stderr(gcp_env_reload), "");
    ck_assert_int_eq(gcp_env_long(g->id), g->want);
    char want[32];
    snprintf(want, sizeof want, "%ld", g->want);
    const char *t = text(g->id);
    /* Choices print their canonical name, numbers and bools their value. */
    ck_assert_msg(strcmp(t, want) == 0 || strcasecmp(t, g->value) == 0, "%s", t);
}
END_TEST

START_TEST(ring_limits)
{
    /* The power-of-two ends of both ranges, in one go (MIN <= MAX). */
    setenv("GCPOOL_RING_MIN", "1048576", 1);
    setenv("GCPOOL_RING_MAX", "16777216", 1);
    ck_assert_str_eq(test_capture_stderr(gcp_env_reload), "");
    ck_assert_int_eq(gcp_env_long(GCP_ENV_RING_MIN), 1048576);
    ck_assert_int_eq(gcp_env_long(GCP_ENV_RING_MAX), 16777216);
    setenv("GCPOOL_RING_MIN", "2", 1);
    setenv("GCPOOL_RING_MAX", "2", 1);
    ck_assert_str_eq(test_capture_stderr(gcp_env_reload), "");
    ck_assert_int_eq(gcp_env_long(GCP_ENV_RING_MAX), 2);
}
END_TEST

START_TEST(ring_max_below_min)
{
    test_setenv("GCPOOL_RING_MIN", "64");
    setenv("GCPOOL_RING_MAX", "16", 1);
    const char *err = test_capture_stderr(gcp_env_reload);
    ck_assert_int_eq(lines(err), 1);
    ck_assert_ptr_nonnull(strstr(err, "GCPOOL_RING_MAX=16"));
    ck_assert_ptr_nonnull(strstr(err, "GCPOOL_RING_MIN=64"));
    ck_assert_int_eq(gcp_env_long(GCP_ENV_RING_MIN), 64);
    ck_assert_int_eq(gcp_env_long(GCP_ENV_RING_MAX), 64);
    /* A RING_MIN above the default RING_MAX raises it too. */
    unsetenv("GCPOOL_RING_MAX");
    setenv("GCPOOL_RING_MIN", "2048", 1);
    err = test_capture_stderr(gcp_env_reload);
    ck_assert_int_eq(lines(err), 1);
    ck_assert_ptr_nonnull(strstr(err, "GCPOOL_RING_MAX=1024 (the default)"));
    ck_assert_int_eq(gcp_env_long(GCP_ENV_RING_MAX), 2048);
}
END_TEST

START_TEST(unknown_variable)
{
    setenv("GCPOOL_VICTUM", "0", 1);
    const char *err = test_capture_stderr(gcp_env_reload);
    ck_assert_int_eq(lines(err), 1);
    ck_assert_ptr_nonnull(strstr(err, "GCPOOL_VICTUM "));
    ck_assert_ptr_nonnull(strstr(err, "did you mean GCPOOL_VICTIM?"));
    ck_assert_int_eq(gcp_env_long(GCP_ENV_VICTIM), 1);
    /* One line each; the harness's own variables are not typos. */
    setenv("GCPOOL_FOO", "", 1);
    setenv("GCPOOL_BUILDDIR", "/nowhere", 1);
    setenv("GCPOOL_TEST_N", "3", 1);
    err = test_capture_stderr(gcp_env_reload);
    ck_assert_int_eq(lines(err), 2);
    ck_assert_ptr_nonnull(strstr(err, "GCPOOL_FOO "));
}
END_TEST

/* A minimal JSON reader: one object of string members.  Returns the number of
 * members, each unescaped into keys/vals; -1 when malformed. */
static const char *json_string(const char *p, char *out, size_t len)
{
    if (*p++ != '"')
        return NULL;
    size_t o = 0;
    for (; *p != '"'; p++) {
        if (!*p || (unsigned char)*p < 0x20 || o + 1 >= len)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                unsigned c;
                if (sscanf(p + 1, "%4x", &c) != 1 || c > 0x7f)
                    return NULL;
                out[o++] = (char)c, p += 4;
            } else if (*p == '"' || *p == '\\' || *p == '/') {
                out[o++] = *p;
            } else {
                return NULL;
            }
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return p + 1;
}

static int json_object(const char *p, char keys[][64], char vals[][256], int max)
{
    int n = 0;
    p += strspn(p, " \n");
    if (*p++ != '{')
        return -1;
    for (;;) {
        p += strspn(p, " \n");
        if (n == max || !(p = json_string(p, keys[n], 64)))
            return -1;
        p += strspn(p, " \n");
        if (*p++ != ':')
            return -1;
        p += strspn(p, " \n");
        if (!(p = json_string(p, vals[n++], 256)))
            return -1;
        p += strspn(p, " \n");
        if (*p == '}')
            return p[1 + strspn(p + 1, " \n")] ? -1 : n;
        if (*p++ != ',')
            return -1;
    }
}

static char *print_to_string(bool json)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    gcp_env_print(f, json);
    fclose(f);
    return s;
}

START_TEST(json)
{
    static const char path[] = "/tmp/a \"quoted\" \\ name\t.json";
    setenv("GCPOOL_STATS_FILE", path, 1);
    setenv("GCPOOL_GC", "sim", 1);
    ck_assert_str_eq(test_capture_stderr(gcp_env_reload), "");
    ck_assert_str_eq(gcp_env_str(GCP_ENV_STATS_FILE), path);
    char *s = print_to_string(true);
    char keys[GCP_ENV_COUNT + 1][64], vals[GCP_ENV_COUNT + 1][256];
    ck_assert_int_eq(json_object(s, keys, vals, GCP_ENV_COUNT + 1), GCP_ENV_COUNT);
    for (int id = 0; id < GCP_ENV_COUNT; id++) {
        ck_assert_str_eq(keys[id], gcp_env_name(id));
        ck_assert_str_eq(vals[id], text(id));
    }
    ck_assert_str_eq(vals[GCP_ENV_STATS_FILE], path);
    ck_assert_str_eq(vals[GCP_ENV_GC], "sim");
    free(s);
}
END_TEST

START_TEST(text_and_markdown)
{
    test_setenv("GCPOOL_RING_MIN", "32");
    char *s = print_to_string(false);
    ck_assert_int_eq(lines(s), GCP_ENV_COUNT + 1);
    for (int id = 0; id < GCP_ENV_COUNT; id++)
        ck_assert_ptr_nonnull(strstr(s, gcp_env_name(id)));
    ck_assert_ptr_nonnull(strstr(s, "GCPOOL_RING_MIN          32           8 "));
    free(s);

    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    gcp_env_print_markdown(f);
    fclose(f);
    ck_assert_int_eq(lines(s), GCP_ENV_COUNT + 2);
    for (int id = 0; id < GCP_ENV_COUNT; id++) {
        char row[64];
        snprintf(row, sizeof row, "\n| `%s` | ", gcp_env_name(id));
        ck_assert_ptr_nonnull(strstr(s, row));
    }
    ck_assert_ptr_nonnull(strstr(s, "`auto` \\| `boehm` \\| `sim`"));
    ck_assert_ptr_nonnull(strstr(s, "| `GCPOOL_RING_MIN` | power of two | `8` | 2 .. 1048576"));
    free(s);
}
END_TEST

static void *first_read(void *arg)
{
    (void)arg;
    return (void *)gcp_env_long(GCP_ENV_VICTIM);
}

static void read_from_threads(void)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, first_read, NULL), 0);
    for (int i = 0; i < 8; i++) {
        void *v;
        pthread_join(t[i], &v);
        ck_assert_ptr_eq(v, NULL); /* GCPOOL_VICTIM=0 */
    }
}

/* Read once, lazily, by whichever thread comes first: the warnings appear once,
 * and a later change to the environment is not seen until a reload. */
START_TEST(read_once)
{
    setenv("GCPOOL_VICTIM", "0", 1);
    setenv("GCPOOL_VICTUM", "0", 1);
    const char *nofork = getenv("CK_FORK");
    if (nofork && strcmp(nofork, "no") == 0)
        return; /* the first read happened in an earlier test */
    ck_assert_int_eq(lines(test_capture_stderr(read_from_threads)), 1);
    setenv("GCPOOL_VICTIM", "1", 1);
    ck_assert_int_eq(gcp_env_long(GCP_ENV_VICTIM), 0);
    ck_assert_int_eq(lines(test_capture_stderr(gcp_env_reload)), 1);
    ck_assert_int_eq(gcp_env_long(GCP_ENV_VICTIM), 1);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("env");
    TCase *tc = test_tcase(s, "env", 0);
    tcase_add_checked_fixture(tc, clean_env, NULL);
    tcase_add_test(tc, defaults);
    tcase_add_loop_test(tc, bad_value, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, bad_value_one_line);
    tcase_add_loop_test(tc, good_value, 0, (int)(sizeof good / sizeof good[0]));
    tcase_add_test(tc, ring_limits);
    tcase_add_test(tc, ring_max_below_min);
    tcase_add_test(tc, unknown_variable);
    tcase_add_test(tc, json);
    tcase_add_test(tc, text_and_markdown);
    tcase_add_test(tc, read_once);
    return s;
}

TEST_MAIN(make_suite)
