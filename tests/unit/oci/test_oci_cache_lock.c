/* The blob cache's locks: a holder removes its lock file on release, so
 * none is left in the cache, and they must stay exclusive anyway, between
 * threads and between processes (a waiter that gets the lock of a removed
 * file must start over on the current one). Also: a cancelled wait, a lock
 * file left by a killed pull, and index.json's lock under concurrent tags. */
#include "../check.h"
#include "oci/oci_int.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define THREADS 8
#define PROCS 4
#define ROUNDS 400
#define TAGS 25

static const char DIGEST[] = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

static oci_cache cache;

/* In shared memory, so that forked children count too. */
typedef struct {
	atomic_int inside, overlaps, failures;
} counters;
static counters *cnt;

static void one_round(void)
{
	int fd;
	if (oci_cache_lock(&cache, DIGEST, NULL, &fd) != 0) {
		atomic_fetch_add(&cnt->failures, 1);
		return;
	}
	if (atomic_fetch_add(&cnt->inside, 1) != 0)
		atomic_fetch_add(&cnt->overlaps, 1);
	for (int i = 0; i < 20; i++)
		sched_yield(); /* give the others time to get in, if they can */
	atomic_fetch_sub(&cnt->inside, 1);
	oci_cache_unlock(&cache, DIGEST, fd);
}

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++)
		one_round();
	return NULL;
}

/* Names in dir ending in suffix. */
static int count_suffix(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void test_threads_exclusive(void)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_INT(atomic_load(&cnt->overlaps), 0);
	CHECK_EQ_INT(atomic_load(&cnt->failures), 0);
	CHECK_EQ_INT(count_suffix(cache.blobs, ".lock"), 0);
}

static void test_processes_exclusive(void)
{
	atomic_store(&cnt->overlaps, 0);
	pid_t pids[PROCS];
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			worker(NULL);
			_exit(0);
		}
	}
	for (int i = 0; i < PROCS; i++) {
		int status;
		CHECK(pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0);
	}
	CHECK_EQ_INT(atomic_load(&cnt->overlaps), 0);
	CHECK_EQ_INT(atomic_load(&cnt->failures), 0);
	CHECK_EQ_INT(count_suffix(cache.blobs, ".lock"), 0);
}

static void test_cancelled_wait(void)
{
	int held, fd = -1;
	CHECK_OK(oci_cache_lock(&cache, DIGEST, NULL, &held));
	atomic_int cancel = 1;
	bng_op op = {.cancel = &cancel};
	CHECK_EQ_INT(oci_cache_lock(&cache, DIGEST, &op, &fd), BANGER_ECANCELED);
	CHECK_EQ_INT(fd, -1);
	char *want = bng_asprintf("cancelled while waiting for another pull of %s", DIGEST);
	CHECK_EQ_STR(banger_error_last(), want);
	free(want);
	oci_cache_unlock(&cache, DIGEST, held);
	CHECK_EQ_INT(count_suffix(cache.blobs, ".lock"), 0);
}

/* A pull killed while holding the lock leaves its file: the next pull of
 * that blob takes it and removes it. */
static void test_left_by_a_killed_pull(void)
{
	char *path = bng_asprintf("%s/%s.lock", cache.blobs, DIGEST + 7);
	check_write_file(path, "", 0);
	CHECK_EQ_INT(count_suffix(cache.blobs, ".lock"), 1);
	int fd;
	CHECK_OK(oci_cache_lock(&cache, DIGEST, NULL, &fd));
	oci_cache_unlock(&cache, DIGEST, fd);
	CHECK(access(path, F_OK) != 0);
	free(path);
}

static void *tagger(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int i = 0; i < TAGS; i++) {
		char name[64];
		snprintf(name, sizeof(name), "example.org/t%d:%d", id, i);
		if (oci_cache_tag(&cache, name, "application/vnd.oci.image.index.v1+json", DIGEST, 1) != 0)
			atomic_fetch_add(&cnt->failures, 1);
	}
	return NULL;
}

/* Every read-modify-write of index.json under its lock: none lost. */
static void test_concurrent_tags(void)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, tagger, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_INT(atomic_load(&cnt->failures), 0);
	char *path = bng_asprintf("%s/index.json", cache.root);
	json_t *index = json_load_file(path, 0, NULL);
	CHECK_EQ_INT(json_array_size(json_object_get(index, "manifests")), THREADS * TAGS);
	json_decref(index);
	free(path);
	CHECK_EQ_INT(count_suffix(cache.root, ".lock"), 0);
}

int main(void)
{
	char *dir = check_tmpdir("lock");
	if (oci_cache_open(&cache, dir) != 0) {
		fprintf(stderr, "cannot set up a cache: %s\n", banger_error_last());
		return 1;
	}
	cnt = mmap(NULL, sizeof(*cnt), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (cnt == MAP_FAILED)
		return 1;
	memset(cnt, 0, sizeof(*cnt));
	test_processes_exclusive(); /* first: no threads yet when forking */
	test_threads_exclusive();
	test_cancelled_wait();
	test_left_by_a_killed_pull();
	test_concurrent_tags();
	oci_cache_close(&cache);
	munmap(cnt, sizeof(*cnt));
	check_rm_rf(dir);
	free(dir);
	return check_summary();
}
