/* Engine lifecycle (state-dir lock, config, store, the registered modules'
 * hooks) and method dispatch. */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Takes the state directory's exclusive lock and records our pid in it. */
static int lock_state(bng_engine *e)
{
	int fd = open(e->paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot open lock file %s", e->paths.lock);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e2 = errno;
		char buf[32] = {0};
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		close(fd);
		if (e2 != EWOULDBLOCK)
			return bng_err_errno(BANGER_EIO, e2, "cannot lock %s", e->paths.lock);
		long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
		char comm[64] = "unknown", *cpath = bng_asprintf("/proc/%ld/comm", pid);
		FILE *f = fopen(cpath, "r");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		free(cpath);
		return bng_err(BANGER_EBUSY, "state directory %s is in use by pid %ld (%s)", e->paths.state_dir, pid,
			       comm);
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		close(fd);
		return bng_err_errno(BANGER_EIO, errno, "cannot write lock file %s", e->paths.lock);
	}
	e->lock_fd = fd;
	return 0;
}

int bng_engine_open(bng_engine **out, const char *state_dir, const char *config_path,
		    const bng_module *const *modules, size_t nmodules)
{
	bng_engine *e = bng_xcalloc(1, sizeof(*e));
	e->modules = modules;
	e->nmodules = nmodules;
	e->lock_fd = -1;
	pthread_mutex_init(&e->reserve_lock, NULL);
	pthread_cond_init(&e->reserve_cond, NULL);
	e->reserved = json_object();
	e->kvm_usable = -1;
	bng_paths_init(&e->paths, state_dir);
	e->images_dir = bng_asprintf("%s/images", e->paths.state_dir);
	e->kernels_dir = bng_asprintf("%s/kernels", e->paths.state_dir);
	e->tmp_dir = bng_asprintf("%s/tmp", e->paths.state_dir);
	if (config_path && *config_path) {
		free(e->paths.config_file);
		e->paths.config_file = bng_strdup(config_path);
	}
	int rc = bng_config_load(&e->config, e->paths.config_file, e->paths.config_dir);
	if (!rc) {
		rc = bng_dir_writable(e->paths.state_dir);
		if (rc)
			rc = bng_err(rc, "%s; set BANGER_STATE_DIR (or open local:/some/dir) to a writable directory",
				     banger_error_last());
	}
	if (!rc)
		rc = lock_state(e);
	if (!rc)
		rc = bng_mkdir_p(e->paths.cache_dir, 0700);
	if (!rc)
		rc = bng_store_open(&e->store, e->paths.db);
	if (!rc)
		rc = bng_mkdir_p(e->images_dir, 0700);
	if (!rc)
		rc = bng_mkdir_p(e->kernels_dir, 0700);
	if (!rc)
		rc = bng_rm_rf(e->tmp_dir); /* only ever scratch */
	if (!rc)
		rc = bng_mkdir_p(e->tmp_dir, 0700);
	for (size_t i = 0; !rc && i < e->nmodules; i++)
		if (e->modules[i]->reconcile)
			rc = e->modules[i]->reconcile(e);
	if (rc) {
		bng_engine_close(e);
		return rc;
	}
	clock_gettime(CLOCK_MONOTONIC, &e->started);
	e->started_wall = time(NULL);
	*out = e;
	return 0;
}

void bng_engine_start_services(bng_engine *e)
{
	for (size_t i = 0; i < e->nmodules; i++)
		if (e->modules[i]->services)
			e->modules[i]->services(e);
}

void bng_engine_close(bng_engine *e)
{
	if (!e)
		return;
	for (size_t i = e->nmodules; i-- > 0;)
		if (e->modules[i]->close)
			e->modules[i]->close(e);
	bng_store_close(&e->store);
	if (e->lock_fd >= 0)
		close(e->lock_fd); /* releases the flock */
	bng_config_free(&e->config);
	bng_paths_free(&e->paths);
	free(e->images_dir);
	free(e->kernels_dir);
	free(e->tmp_dir);
	json_decref(e->reserved);
	free(e->kvm_why);
	pthread_mutex_destroy(&e->reserve_lock);
	pthread_cond_destroy(&e->reserve_cond);
	free(e);
}

static const bng_method *find_method(const bng_engine *e, const char *name)
{
	for (size_t i = 0; i < e->nmodules; i++)
		for (size_t j = 0; j < e->modules[i]->nmethods; j++)
			if (!strcmp(e->modules[i]->methods[j].name, name))
				return &e->modules[i]->methods[j];
	return NULL;
}

static bool type_matches(const char *type, size_t tlen, json_t *v)
{
	if (!strncmp(type, "int", tlen))
		return json_is_integer(v);
	if (!strncmp(type, "str", tlen))
		return json_is_string(v);
	if (!strncmp(type, "bool", tlen))
		return json_is_boolean(v);
	if (!strncmp(type, "obj", tlen))
		return json_is_object(v);
	if (!strncmp(type, "arr", tlen))
		return json_is_array(v);
	return false;
}

static const char *type_noun(const char *type)
{
	switch (type[0]) {
	case 'i': return "an integer";
	case 's': return "a string";
	case 'b': return "a boolean";
	case 'o': return "an object";
	default: return "an array";
	}
}

/* Checks params against m->params: every declared parameter has the right
 * type, required ones are present, nothing undeclared is passed. */
static int validate_params(const bng_method *m, json_t *params)
{
	if (!json_is_object(params))
		return bng_err(BANGER_EINVAL, "%s: params must be a JSON object", m->name);
	json_t *seen = json_object();
	int rc = 0;
	for (const char *p = m->params; p && *p && !rc;) {
		const char *colon = strchr(p, ':');
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		char name[64];
		size_t nlen = (size_t)(colon - p);
		memcpy(name, p, nlen);
		name[nlen] = '\0';
		const char *type = colon + 1;
		bool optional = end[-1] == '?';
		size_t tlen = (size_t)(end - type) - (optional ? 1 : 0);
		json_object_set_new(seen, name, json_true());
		json_t *v = json_object_get(params, name);
		if (!v || json_is_null(v)) {
			if (!optional)
				rc = bng_err(BANGER_EINVAL, "%s: missing required parameter '%s'", m->name, name);
		} else if (!type_matches(type, tlen, v)) {
			rc = bng_err(BANGER_EINVAL, "%s: parameter '%s' must be %s", m->name, name, type_noun(type));
		}
		p = comma ? comma + 1 : end;
	}
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v) {
		if (!rc && !json_object_get(seen, k))
			rc = bng_err(BANGER_EINVAL, "%s: unknown parameter '%s'", m->name, k);
	}
	json_decref(seen);
	return rc;
}

int bng_engine_dispatch(bng_engine *e, const char *method, json_t *params, json_t **result, bng_op *op)
{
	*result = NULL;
	bng_err_clear();
	const bng_method *m = method ? find_method(e, method) : NULL;
	if (!m)
		return bng_err(BANGER_ENOMETHOD, "unknown method '%s' (see rpc.methods)", method ? method : "");
	json_t *empty = NULL;
	if (!params)
		params = empty = json_object();
	int rc = validate_params(m, params);
	if (!rc && bng_op_cancelled(op))
		rc = bng_err(BANGER_ECANCELED, "%s: cancelled", m->name);
	if (!rc)
		rc = m->fn(e, params, result, op);
	if (!rc && !*result)
		*result = json_object();
	if (rc && *result) {
		json_decref(*result);
		*result = NULL;
	}
	if (rc && !*banger_error_last())
		bng_err(rc, "%s failed (%s)", m->name, banger_strerror(rc));
	json_decref(empty);
	return rc;
}
