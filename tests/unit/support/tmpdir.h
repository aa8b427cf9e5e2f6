/* tmpdir.h - temporary data directories for unit tests that open a real
 * store (test_store_*.c). Part of the rw_test_support library. */
#ifndef RW_TEST_TMPDIR_H
#define RW_TEST_TMPDIR_H

/* Creates /tmp/PREFIX-XXXXXX; returns its malloc'd path, or NULL. */
char *test_mkdtemp(const char *prefix);
/* Removes the directory and everything below it, then frees dir. */
void test_rmtree(char *dir);

#endif
