/* replay.c: the standalone driver that every fuzz target is linked with when
 * the build is not a libFuzzer build (meson option fuzz=false, gcc and its
 * sanitizers included).  It feeds each file named on the command line, or
 * each regular file of each directory named there, once to the target's
 * LLVMFuzzerTestOneInput, so that `make test` replays every corpus under
 * ASan/UBSan.  What it is not: no mutation, no coverage; `make fuzz` builds
 * the same targets against libFuzzer for that.
 *
 * A target may define fuzz_cleanup() (weak here): called once after the last
 * input, so that the leak checker sees what the target's set-up held freed.
 * Exit status: 0 when every input ran, 1 when a path could not be read or
 * no input was found (a misnamed corpus must not pass as empty). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_cleanup(void) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *p = malloc(cap);
    for (size_t n; p && (n = fread(p + len, 1, cap - len, f)) > 0;) {
        len += n;
        if (len == cap)
            p = realloc(p, cap *= 2);
    }
    fclose(f);
    if (!p)
        return -1;
    /* an exact-size copy, so that reading past the input is caught */
    uint8_t *exact = malloc(len ? len : 1);
    memcpy(exact, p, len);
    free(p);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Runs every regular file of dir, in name order.  Returns how many, or -1. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap)
            names = realloc(names, sizeof *names * (cap = cap ? cap * 2 : 64));
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    int ran = 0, rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) < 0)
                rc = -1;
            else
                ran++;
        }
        free(names[i]);
    }
    free(names);
    return rc < 0 ? -1 : ran;
}

int main(int argc, char **argv)
{
    int ran = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            bad = 1;
        } else if (S_ISDIR(st.st_mode)) {
            int n = run_dir(argv[i]);
            bad |= n < 0;
            ran += n > 0 ? n : 0;
        } else {
            bad |= run_file(argv[i]) < 0;
            ran++;
        }
    }
    if (fuzz_cleanup)
        fuzz_cleanup();
    printf("replayed %d inputs\n", ran);
    return bad || ran == 0;
}
