#include "paths.h"
#include "internal.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	if (h && *h)
		return h;
	struct passwd *pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : "/";
}

/* $override, else $xdg/banger, else ~/fallback/banger. */
static char *xdg_dir(const char *override, const char *xdg, const char *fallback)
{
	const char *v = getenv(override);
	if (v && *v)
		return bng_strdup(v);
	v = getenv(xdg);
	if (v && *v && v[0] == '/')
		return bng_asprintf("%s/banger", v);
	return bng_asprintf("%s/%s/banger", home_dir(), fallback);
}

static char *runtime_dir(void)
{
	const char *v = getenv("BANGER_RUNTIME_DIR");
	if (v && *v)
		return bng_strdup(v);
	v = getenv("XDG_RUNTIME_DIR");
	if (v && *v && v[0] == '/')
		return bng_asprintf("%s/banger", v);
	if (getuid() == 0)
		return bng_strdup("/run/banger");
	return bng_asprintf("/tmp/banger-%u", (unsigned)getuid());
}

char *bng_paths_default_socket(void)
{
	const char *v = getenv("BANGER_SOCKET");
	if (v && *v)
		return bng_strdup(v);
	char *dir = runtime_dir();
	char *s = bng_asprintf("%s/bangerd.sock", dir);
	free(dir);
	return s;
}

void bng_paths_init(bng_paths *p, const char *state_dir_override)
{
	memset(p, 0, sizeof(*p));
	p->config_dir = xdg_dir("BANGER_CONFIG_DIR", "XDG_CONFIG_HOME", ".config");
	const char *cf = getenv("BANGER_CONFIG");
	p->config_file = cf && *cf ? bng_strdup(cf) : bng_asprintf("%s/config.toml", p->config_dir);
	p->state_dir = state_dir_override && *state_dir_override
			       ? bng_strdup(state_dir_override)
			       : xdg_dir("BANGER_STATE_DIR", "XDG_STATE_HOME", ".local/state");
	p->cache_dir = xdg_dir("BANGER_CACHE_DIR", "XDG_CACHE_HOME", ".cache");
	p->runtime_dir = runtime_dir();
	p->socket = bng_paths_default_socket();
	p->db = bng_asprintf("%s/state.db", p->state_dir);
	p->lock = bng_asprintf("%s/lock", p->state_dir);
}

void bng_paths_free(bng_paths *p)
{
	free(p->config_dir);
	free(p->config_file);
	free(p->state_dir);
	free(p->cache_dir);
	free(p->runtime_dir);
	free(p->socket);
	free(p->db);
	free(p->lock);
	memset(p, 0, sizeof(*p));
}

char *bng_agent_binary(void)
{
	const char *env = getenv("BANGER_AGENT");
	if (env && *env)
		return bng_strdup(env);
#ifdef BANGER_BUILD_AGENT
	if (access(BANGER_BUILD_AGENT, X_OK) == 0)
		return bng_strdup(BANGER_BUILD_AGENT);
#endif
#ifdef BANGER_LIBEXEC_AGENT
	if (access(BANGER_LIBEXEC_AGENT, X_OK) == 0)
		return bng_strdup(BANGER_LIBEXEC_AGENT);
#endif
	return NULL;
}
