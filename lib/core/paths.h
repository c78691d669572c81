/* Where banger keeps things: XDG base directories with BANGER_* overrides. */
#ifndef BANGER_PATHS_H
#define BANGER_PATHS_H

typedef struct {
	char *config_dir;   /* $BANGER_CONFIG_DIR | $XDG_CONFIG_HOME/banger | ~/.config/banger */
	char *config_file;  /* $BANGER_CONFIG | <config_dir>/config.toml */
	char *state_dir;    /* $BANGER_STATE_DIR | $XDG_STATE_HOME/banger | ~/.local/state/banger */
	char *cache_dir;    /* $BANGER_CACHE_DIR | $XDG_CACHE_HOME/banger | ~/.cache/banger */
	char *runtime_dir;  /* $BANGER_RUNTIME_DIR | $XDG_RUNTIME_DIR/banger | /run/banger (root) | /tmp/banger-<uid> */
	char *socket;       /* $BANGER_SOCKET | <runtime_dir>/bangerd.sock */
	char *db;           /* <state_dir>/state.db */
	char *lock;         /* <state_dir>/lock */
} bng_paths;

/* Fills paths from the environment; state_dir_override (may be NULL)
 * replaces the state directory (local:/path). */
void bng_paths_init(bng_paths *p, const char *state_dir_override);
void bng_paths_free(bng_paths *p);
/* The default daemon socket path (malloc'd). */
char *bng_paths_default_socket(void);
/* The guest agent binary (malloc'd): $BANGER_AGENT, the build tree, the
 * install dir; NULL when none is there. */
char *bng_agent_binary(void);

#endif
