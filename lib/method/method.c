/* Helpers every method module shares (method.h): one creator per name,
 * atomic publishing of a staged directory, start-up cleanup. */
#include "method.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int bng_engine_reserve(bng_engine *e, const char *key, bng_op *op)
{
	/* one creator per name: later callers wait, then see what it made */
	pthread_mutex_lock(&e->reserve_lock);
	while (json_object_get(e->reserved, key)) {
		if (bng_op_cancelled(op)) {
			pthread_mutex_unlock(&e->reserve_lock);
			return bng_err(BANGER_ECANCELED, "cancelled while waiting for %s", key);
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 50 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&e->reserve_cond, &e->reserve_lock, &until);
	}
	json_object_set_new(e->reserved, key, json_true());
	pthread_mutex_unlock(&e->reserve_lock);
	return 0;
}

void bng_engine_release(bng_engine *e, const char *key)
{
	pthread_mutex_lock(&e->reserve_lock);
	json_object_del(e->reserved, key);
	pthread_cond_broadcast(&e->reserve_cond);
	pthread_mutex_unlock(&e->reserve_lock);
}

int bng_publish_dir(const char *staging, const char *final)
{
	if (rename(staging, final) != 0)
		return bng_err_errno(BANGER_EIO, errno, "cannot publish %s", final);
	/* make the rename durable before the database points at it */
	char *parent = bng_strdup(final);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(parent);
	return 0;
}

int bng_clean_leftovers(bng_engine *e, const char *dir, const char *table)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	json_t *rows = NULL;
	char *sql = bng_asprintf("SELECT id FROM %s", table);
	int rc = bng_store_query(&e->store, &rows, sql, 0, NULL);
	free(sql);
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		bool known = false;
		size_t i;
		json_t *row;
		json_array_foreach(rows, i, row) known |= !strcmp(json_string_value(json_object_get(row, "id")), de->d_name);
		if (!known) {
			char *p = bng_asprintf("%s/%s", dir, de->d_name);
			rc = bng_rm_rf(p);
			free(p);
		}
	}
	closedir(d);
	json_decref(rows);
	return rc;
}
