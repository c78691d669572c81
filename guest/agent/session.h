/* banger-agent session ...: durable sessions (session.c). */
#ifndef BANGER_AGENT_SESSION_H
#define BANGER_AGENT_SESSION_H

/* argv[0] is "session", argv[1] the verb; returns the exit status. */
int session_main(int argc, char **argv);

#endif
