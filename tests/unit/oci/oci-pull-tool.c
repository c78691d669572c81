/* Test driver for bng_oci_pull: pulls REF into CACHE and prints one JSON
 * object per line: {"event":...} for progress, then {"result":...} or
 * {"error":{"code","name","message"}} per pull. Exit 0 when every pull
 * succeeded, 1 otherwise, 2 on bad usage.
 *   --threads N          N concurrent pulls of REF in this process
 *   --cancel-after-ms N  cancel N ms after the start
 *   --cancel-at-bytes N  cancel once a blob download passes N bytes
 *   --insecure LIST      registries spoken to over plain http (insecure_registries) */
#include "oci/oci.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int cancel_flag;
static atomic_int finished;
static long long cancel_at_bytes = -1;
static const char *cache_dir, *ref, *insecure;

static void print_line(const char *key, json_t *value)
{
	json_t *line = json_pack("{s:o}", key, value);
	char *text = json_dumps(line, JSON_COMPACT);
	pthread_mutex_lock(&out_lock);
	printf("%s\n", text);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	free(text);
	json_decref(line);
}

static void on_event(bng_op *op, json_t *ev)
{
	json_t *done = json_object_get(ev, "done"), *total = json_object_get(ev, "total");
	if (cancel_at_bytes >= 0 && done && !json_is_true(json_object_get(ev, "cached")) &&
	    json_integer_value(done) >= cancel_at_bytes && json_integer_value(done) < json_integer_value(total))
		atomic_store(&cancel_flag, 1);
	print_line("event", ev);
}

static void *pull_thread(void *arg)
{
	bng_op op = {.emit = on_event, .cancel = &cancel_flag};
	bng_oci_image img;
	int rc = bng_oci_pull(cache_dir, ref, insecure, &op, &img);
	if (rc) {
		print_line("error", json_pack("{s:i,s:s,s:s}", "code", rc, "name", banger_strerror(rc), "message",
					      banger_error_last()));
	} else {
		print_line("result", bng_oci_image_to_json(&img));
	}
	bng_oci_image_free(&img);
	return (void *)(intptr_t)(rc != 0);
}

static void *canceller(void *arg)
{
	long ms = *(long *)arg;
	for (long t = 0; t < ms && !atomic_load(&finished); t += 5)
		usleep(5000);
	if (!atomic_load(&finished))
		atomic_store(&cancel_flag, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = 1;
	long cancel_ms = -1;
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (i + 1 >= argc)
			break;
		if (strcmp(argv[i], "--threads") == 0)
			threads = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--cancel-after-ms") == 0)
			cancel_ms = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--cancel-at-bytes") == 0)
			cancel_at_bytes = atoll(argv[i + 1]);
		else if (strcmp(argv[i], "--insecure") == 0)
			insecure = argv[i + 1];
		else
			break;
	}
	if (argc - i != 2 || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: oci-pull-tool [--threads N] [--cancel-after-ms N] [--cancel-at-bytes N] [--insecure LIST] "
				"CACHE REF\n");
		return 2;
	}
	cache_dir = argv[i];
	ref = argv[i + 1];

	pthread_t canc;
	if (cancel_ms >= 0)
		pthread_create(&canc, NULL, canceller, &cancel_ms);
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	if (!t)
		abort();
	for (int k = 0; k < threads; k++)
		pthread_create(&t[k], NULL, pull_thread, NULL);
	int failed = 0;
	for (int k = 0; k < threads; k++) {
		void *res;
		pthread_join(t[k], &res);
		failed |= res != NULL;
	}
	atomic_store(&finished, 1);
	if (cancel_ms >= 0)
		pthread_join(canc, NULL);
	free(t);
	return failed;
}
