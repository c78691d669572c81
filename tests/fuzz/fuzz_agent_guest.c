/* libFuzzer target: the guest agent's side of the channel, i.e. what it
 * parses from the (untrusted) host connection. The input is the byte stream
 * of one connection: request lines until a "frames" request switches it to
 * frames, and back to lines at a byte that is not the frame magic, as the
 * agent's conn_process does. Lines and CALL frames go through the agent's
 * own handle_line / handle_frame (ops that touch the system -- health, ports,
 * wait_sshd, sync -- are skipped; power and set_clock are refused in this
 * mode), EXEC payloads through parse_exec (nothing is spawned), other frames
 * through handle_frame with no stream open.
 *
 * Invariants: every request line gets exactly one reply line that is a
 * valid JSON object (strict UTF-8) with the request's id and a boolean ok;
 * a line jansson reads as an object (no duplicate keys, nesting within the
 * agent's bound, integer or null id and ms, string op) is accepted with the
 * same id and op; a CALL gets exactly one REPLY frame within the payload
 * limit; a parsed EXEC has a non-empty NULL-terminated argv, KEY=VALUE env
 * and a pty size in range; a frame for no stream produces nothing. */
#include "fuzz.h"
#include <jansson.h>
#include <stdint.h>

int agent_main(int argc, char **argv);

/* The agent is one program with static functions: compile it in, its main
 * renamed, rather than split it into a library just for this target. */
#define main agent_main
#include "../../guest/agent/agent.c"
#undef main

/* agent_main's session verbs (session.c) are commands, not the frame parser */
int session_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 2;
}

/* nor is --init (init.c), which only runs as a guest's PID 1 */
int init_boot(bool *sshd)
{
	(void)sshd;
	return -1;
}

/* nor is the initramfs's /init (initramfs.c), PID 1 before the root exists */
int initramfs_main(void)
{
	return 2;
}

/* Ops that read /proc, wait or sync(2): not for a fuzzer's inner loop. */
static bool touches_system(const request *r)
{
	static const char *const skip[] = {"health", "ports", "wait_sshd", "activity", "sync"};
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (r->has_op && r->op_len == strlen(skip[i]) && !memcmp(r->op, skip[i], r->op_len))
			return true;
	return false;
}

/* Deepest bracket nesting of valid JSON text (brackets in strings skipped). */
static int json_depth(const char *s, size_t n)
{
	int d = 0, max = 0;
	bool in_str = false;
	for (size_t i = 0; i < n; i++) {
		if (in_str) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_str = false;
		} else if (s[i] == '"') {
			in_str = true;
		} else if (s[i] == '{' || s[i] == '[') {
			max = ++d > max ? d : max;
		} else if (s[i] == '}' || s[i] == ']') {
			d--;
		}
	}
	return max;
}

/* A reply object: the request's id, a boolean ok, an error when not ok. */
static json_t *check_reply(const char *p, size_t n, const request *r, bool parsed)
{
	json_error_t jerr;
	json_t *reply = json_loadb(p, n, 0, &jerr);
	if (!json_is_object(reply))
		fprintf(stderr, "reply %.*s: %s\n", (int)n, p, jerr.text);
	REQUIRE(json_is_object(reply));
	json_t *id = json_object_get(reply, "id");
	if (parsed && r->has_id)
		REQUIRE(json_is_integer(id) && json_integer_value(id) == r->id);
	else if (!r->has_id)
		REQUIRE(json_is_null(id));
	json_t *ok = json_object_get(reply, "ok");
	REQUIRE(json_is_boolean(ok));
	if (!json_is_true(ok))
		REQUIRE(json_string_length(json_object_get(reply, "error")) > 0);
	return reply;
}

/* The request line against jansson as an oracle. */
static void check_oracle(const char *line, size_t n, const char *err, const request *r)
{
	/* jansson ends its input at a raw NUL byte; the agent rightly does not */
	if (memchr(line, '\0', n))
		return;
	json_t *doc = json_loadb(line, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	if (!json_is_object(doc) || json_depth(line, n) > MAX_DEPTH) {
		json_decref(doc);
		return;
	}
	json_t *id = json_object_get(doc, "id"), *op = json_object_get(doc, "op"), *ms = json_object_get(doc, "ms");
	if ((!id || json_is_null(id) || json_is_integer(id)) && (!ms || json_is_null(ms) || json_is_integer(ms)) &&
	    (!op || json_is_string(op))) {
		if (err)
			fprintf(stderr, "agent refused %zu bytes [%.*s]: %s\n", n, (int)n, line, err);
		REQUIRE(err == NULL);
		REQUIRE(r->has_id == json_is_integer(id));
		REQUIRE(!r->has_id || r->id == json_integer_value(id));
		REQUIRE(r->has_op == (op != NULL));
		if (op) {
			size_t len = json_string_length(op);
			REQUIRE(r->op_len == len);
			REQUIRE(!memcmp(r->op, json_string_value(op), len < sizeof(r->op) - 1 ? len : sizeof(r->op) - 1));
		}
	}
	json_decref(doc);
}

static void check_line(conn *c, const char *line, size_t n)
{
	request r;
	const char *err = parse_request(line, n, &r);
	check_oracle(line, n, err, &r);
	if (!err && touches_system(&r))
		return;
	bool blank = true;
	for (size_t i = 0; i < n && blank; i++)
		blank = line[i] == ' ' || line[i] == '\t' || line[i] == '\r';
	c->out.len = 0;
	handle_line(c, line, n);
	if (blank) {
		REQUIRE(c->out.len == 0);
		return;
	}
	REQUIRE(!c->dead && c->out.len > 1 && c->out.p[c->out.len - 1] == '\n');
	REQUIRE(memchr(c->out.p, '\n', c->out.len) == c->out.p + c->out.len - 1);
	json_t *reply = check_reply(c->out.p, c->out.len - 1, &r, !err);
	/* only "frames" succeeds here, and it is what switches the mode */
	REQUIRE(json_is_true(json_object_get(reply, "ok")) == c->frames);
	REQUIRE(!c->frames || (!err && r.op_len == 6 && !memcmp(r.op, "frames", 6)));
	json_decref(reply);
}

static void check_exec(const char *p, size_t n)
{
	exec_req x = {0};
	const char *err = parse_exec(p, n, &x);
	if (err) {
		REQUIRE(*err);
	} else {
		REQUIRE(x.argc >= 1 && x.argv && x.argv[x.argc] == NULL);
		for (size_t i = 0; i < x.argc; i++)
			REQUIRE(x.argv[i] != NULL);
		REQUIRE(!x.envc || x.env[x.envc] == NULL);
		for (size_t i = 0; i < x.envc; i++)
			REQUIRE(x.env[i][0] != '=' && strchr(x.env[i], '='));
		REQUIRE(x.rows >= 1 && x.rows <= 65535 && x.cols >= 1 && x.cols <= 65535);
	}
	exec_req_free(&x);
}

static void check_frame(conn *c, int type, uint32_t id, const char *p, size_t n)
{
	c->out.len = 0;
	c->out_off = 0;
	if (type == F_EXEC) {
		check_exec(p, n);
		return;
	}
	request r;
	const char *err = NULL;
	if (type == F_CALL && !(err = parse_request(p, n, &r)) && touches_system(&r))
		return;
	handle_frame(c, type, id, p, n);
	if (type != F_CALL) {
		REQUIRE(c->out.len == 0); /* no stream is open */
		return;
	}
	REQUIRE(!c->dead && c->out.len >= FRAME_HDR);
	const unsigned char *h = (const unsigned char *)c->out.p;
	uint32_t len = get_be32(h + 8);
	REQUIRE(h[0] == FRAME_MAGIC && h[1] == F_REPLY && get_be32(h + 4) == 0);
	REQUIRE(len <= MAX_PAYLOAD && c->out.len == FRAME_HDR + len);
	json_t *reply = check_reply(c->out.p + FRAME_HDR, len, &r, !err);
	REQUIRE(json_is_false(json_object_get(reply, "ok"))); /* "frames" included: already framed */
	json_decref(reply);
}

/* An exact-size heap copy, so ASan sees any read past the end. */
static char *copy(const uint8_t *p, size_t n)
{
	char *s = malloc(n ? n : 1);
	if (!s)
		abort();
	memcpy(s, p, n);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	conn c = {.kind = CONN_STDIO, .rfd = -1, .wfd = -1};
	size_t pos = 0;
	while (pos < size && !c.dead) {
		if (!c.frames) {
			const uint8_t *nl = memchr(data + pos, '\n', size - pos);
			if (!nl || (size_t)(nl - data - pos) > MAX_LINE)
				break; /* incomplete, or answered with "line too long" unparsed */
			size_t n = (size_t)(nl - data - pos);
			char *line = copy(data + pos, n);
			check_line(&c, line, n);
			free(line);
			pos += n + 1;
			continue;
		}
		int type = -1;
		uint32_t id = 0, n = 0;
		int v = frame_parse(data + pos, size - pos, &type, &id, &n);
		REQUIRE((v == FRAME_NOT_MAGIC) == (data[pos] != FRAME_MAGIC));
		if (v == FRAME_NOT_MAGIC) {
			c.frames = false; /* a new host in line mode, from this byte */
			continue;
		}
		if (v != FRAME_OK)
			break;
		REQUIRE(n <= MAX_PAYLOAD && FRAME_HDR + (size_t)n <= size - pos && type == data[pos + 1]);
		char *payload = copy(data + pos + FRAME_HDR, n);
		check_frame(&c, type, id, payload, n);
		free(payload);
		pos += FRAME_HDR + n;
	}
	buf_free(&c.out);
	return 0;
}
