/* vm.cp: files and directories between the host and a running guest as one
 * tar stream through the agent link (the guest's own `tar` on its side,
 * libarchive on ours): modes, owners, times and symlinks kept, never one
 * round trip per file. The guest is untrusted: what it sends is extracted
 * only under the destination, refusing "..", absolute names, names outside
 * the copied top-level entry and writes through symlinks (the guest's own
 * or ones already at the destination). */
#include "vm.h"
#include "../fs/ext4.h"

#include "../core/lazy_archive.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	bng_op *op;
	int tar_fd;     /* the tar thread's end of the socketpair */
	int exec_fd;    /* the exec's end */
	pthread_t thread;
	int rc;         /* the tar thread's result */
	char err[512];
	/* in: what to pack; out: where to unpack */
	char *host_path; /* in: the source; out: the directory to extract into */
	char *top;       /* the top-level name inside the stream */
	char *guest_top; /* out: the top-level name the guest's tar writes */
	size_t bytes, files;
	long long last_event_ms;
	char tar_err[256]; /* the end of what the guest's tar said on stderr */
	bng_output *out;   /* in: the guest command's output, when the caller wants it */
} cp_job;

static void progress(cp_job *j, size_t bytes, bool last)
{
	long long t = bng_now_ms();
	if (!last && t - j->last_event_ms < 200)
		return;
	j->last_event_ms = t;
	bng_op_event(j->op, json_pack("{s:s,s:I}", "stage", "copy", "done", (json_int_t)bytes));
}

static void job_fail(cp_job *j, int rc, const char *fmt, const char *a, const char *b)
{
	if (!j->rc) {
		j->rc = rc;
		snprintf(j->err, sizeof(j->err), fmt, a, b);
	}
}

/* ---- host -> guest: pack host_path as top ---- */

static la_ssize_t write_sock(struct archive *a, void *ud, const void *buf, size_t len)
{
	(void)a;
	cp_job *j = ud;
	size_t done = 0;
	while (done < len) {
		ssize_t n = send(j->tar_fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1; /* the exec ended: its error is the one to report */
		done += (size_t)n;
	}
	return (la_ssize_t)len;
}

static void *pack_main(void *arg)
{
	cp_job *j = arg;
	struct archive *disk = archive_read_disk_new(), *out = archive_write_new();
	archive_read_disk_set_symlink_physical(disk); /* symlinks as symlinks, never followed */
	archive_read_disk_set_standard_lookup(disk);
	archive_write_set_format_pax_restricted(out);
	/* names are bytes: no conversion through a locale the daemon may not have */
	archive_write_set_options(out, "hdrcharset=BINARY");
	archive_write_set_bytes_in_last_block(out, 1);
	if (archive_write_open(out, j, NULL, write_sock, NULL) != ARCHIVE_OK ||
	    archive_read_disk_open(disk, j->host_path) != ARCHIVE_OK)
		job_fail(j, BANGER_EIO, "cannot read %s: %s", j->host_path, archive_error_string(disk));
	size_t prefix = strlen(j->host_path);
	struct archive_entry *e = archive_entry_new();
	int r;
	while (!j->rc && (r = archive_read_next_header2(disk, e)) == ARCHIVE_OK) {
		const char *path = archive_entry_pathname(e);
		char *name = bng_asprintf("%s%s", j->top, path + (strlen(path) >= prefix ? prefix : strlen(path)));
		archive_entry_set_pathname(e, name);
		free(name);
		archive_read_disk_descend(disk);
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			job_fail(j, BANGER_EIO, "cannot send %s: %s", archive_entry_pathname(e), archive_error_string(out));
			break;
		}
		if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0) {
			FILE *f = fopen(archive_entry_sourcepath(e), "rb");
			char buf[65536];
			size_t n;
			while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
				if (archive_write_data(out, buf, n) < 0) {
					job_fail(j, BANGER_EIO, "cannot send %s: %s", archive_entry_pathname(e),
						 archive_error_string(out));
					break;
				}
			if (!f)
				job_fail(j, BANGER_EIO, "cannot read %s: %s", archive_entry_sourcepath(e), strerror(errno));
			else
				fclose(f);
		}
		j->files++;
		archive_entry_clear(e);
	}
	if (!j->rc && r != ARCHIVE_EOF)
		job_fail(j, BANGER_EIO, "cannot read %s: %s", j->host_path, archive_error_string(disk));
	archive_entry_free(e);
	archive_write_close(out);
	archive_write_free(out);
	archive_read_free(disk);
	shutdown(j->tar_fd, SHUT_WR); /* the guest's tar sees the end */
	return NULL;
}

static ssize_t pull_stdin(void *ud, char *buf, size_t cap)
{
	cp_job *j = ud;
	ssize_t n;
	while ((n = recv(j->exec_fd, buf, cap, 0)) < 0 && errno == EINTR)
		;
	if (n > 0) {
		j->bytes += (size_t)n;
		progress(j, j->bytes, false);
	}
	return n < 0 ? bng_err_errno(BANGER_EIO, errno, "cannot read the tar stream") : n;
}

/* ---- guest -> host: unpack under host_path, top renamed ---- */

static la_ssize_t read_sock(struct archive *a, void *ud, const void **buf)
{
	(void)a;
	static __thread char chunk[65536];
	cp_job *j = ud;
	ssize_t n;
	while ((n = recv(j->tar_fd, chunk, sizeof(chunk), 0)) < 0 && errno == EINTR)
		;
	*buf = chunk;
	return n < 0 ? -1 : n;
}

/* The guest's name for an entry, checked, as a host path under host_path
 * with guest_top renamed to top; NULL (and the job failed) when it would
 * land anywhere else. */
static char *host_target(cp_job *j, const char *guest_name, const char *what)
{
	char clean[4096];
	if (bng_clean_member_name(guest_name ? guest_name : "", clean, sizeof(clean), what) != 0) {
		job_fail(j, BANGER_EPERM, "the guest sent %s (refused)", banger_error_last(), "");
		return NULL;
	}
	size_t n = strlen(j->guest_top);
	if (strncmp(clean, j->guest_top, n) || (clean[n] && clean[n] != '/')) {
		job_fail(j, BANGER_EPERM, "the guest sent '%.200s', which is not under '%.200s' (refused)", clean, j->guest_top);
		return NULL;
	}
	return bng_asprintf("%s/%s%s", j->host_path, j->top, clean + n);
}

static void *unpack_main(void *arg)
{
	cp_job *j = arg;
	struct archive *in = archive_read_new(), *out = archive_write_disk_new();
	archive_read_support_format_tar(in);
	/* host_target() made every name absolute under the destination after
	 * checking it; libarchive still refuses ".." and writes through symlinks */
	int flags = ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_TIME |
		    ARCHIVE_EXTRACT_PERM;
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	archive_write_disk_set_options(out, flags);
	archive_write_disk_set_standard_lookup(out);
	if (archive_read_open(in, j, NULL, read_sock, NULL) != ARCHIVE_OK)
		job_fail(j, BANGER_EIO, "cannot read the guest's tar stream: %s%s", archive_error_string(in), "");
	struct archive_entry *e;
	int r = ARCHIVE_OK;
	while (!j->rc && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		char *target = host_target(j, archive_entry_pathname(e), "tar entry");
		const char *link = archive_entry_hardlink(e);
		char *link_target = link ? host_target(j, link, "hard link target") : NULL;
		if (!target || (link && !link_target)) {
			free(target);
			free(link_target);
			break;
		}
		archive_entry_set_pathname(e, target);
		if (link_target)
			archive_entry_set_hardlink(e, link_target);
		int wr = archive_write_header(out, e);
		if (wr != ARCHIVE_OK)
			job_fail(j, wr == ARCHIVE_FAILED || wr == ARCHIVE_FATAL ? BANGER_EPERM : BANGER_EIO,
				 "cannot write %s: %s (refused)", target, archive_error_string(out));
		const void *buf;
		size_t len;
		la_int64_t off;
		int dr = ARCHIVE_EOF;
		while (!j->rc && (dr = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
			if (archive_write_data_block(out, buf, len, off) != ARCHIVE_OK)
				job_fail(j, BANGER_EIO, "cannot write %s: %s", target, archive_error_string(out));
			j->bytes += len;
		}
		if (!j->rc && dr != ARCHIVE_EOF)
			job_fail(j, BANGER_EIO, "the guest's tar stream is corrupt at %s: %s", target, archive_error_string(in));
		if (!j->rc && archive_write_finish_entry(out) != ARCHIVE_OK)
			job_fail(j, BANGER_EIO, "cannot finish %s: %s", target, archive_error_string(out));
		j->files++;
		free(target);
		free(link_target);
	}
	if (!j->rc && r != ARCHIVE_EOF)
		job_fail(j, BANGER_EIO, "the guest's tar stream is corrupt: %s%s", archive_error_string(in), "");
	archive_read_free(in);
	archive_write_free(out);
	shutdown(j->tar_fd, SHUT_RDWR); /* a failed unpack ends the exec's writes at once */
	return NULL;
}

/* Keeps the end of the guest tar's stderr: its reason when it fails. */
static void keep_stderr(cp_job *j, const char *data, size_t len)
{
	size_t have = strlen(j->tar_err), cap = sizeof(j->tar_err) - 1;
	if (len >= cap) {
		data += len - cap;
		len = cap;
		have = 0;
	} else if (have + len > cap) {
		memmove(j->tar_err, j->tar_err + (have + len - cap), cap - len);
		have = cap - len;
	}
	memcpy(j->tar_err + have, data, len);
	j->tar_err[have + len] = '\0';
}

/* The guest command's output: stderr's end kept for errors; both collected
 * into the caller's bng_output when it gave one. */
static int tar_stderr(void *ud, int fd, const char *data, size_t len)
{
	cp_job *j = ud;
	if (fd == 2)
		keep_stderr(j, data, len);
	if (j->out)
		bng_output_append(j->out, fd, data, len);
	return 0;
}

static int push_output(void *ud, int fd, const char *data, size_t len)
{
	cp_job *j = ud;
	if (fd == 2) {
		keep_stderr(j, data, len);
		return 0;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = send(j->exec_fd, data + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return bng_err(BANGER_EIO, "the host side stopped reading the tar stream");
		done += (size_t)n;
	}
	progress(j, j->bytes, false);
	return 0;
}

/* ---- the method ---- */

/* Runs argv (stolen) in the guest with io; *code gets its exit status. */
static int guest_run(bng_agent_link *link, const bng_vm_row *vm, json_t *argv, bng_exec_io *io, bng_op *op, int *code)
{
	json_t *spec = json_pack("{s:o}", "argv", argv);
	int rc = bng_vm_guest_run(link, vm, op, spec, io, 0, code, NULL);
	json_decref(spec);
	return rc;
}

/* Packs j->host_path as j->top into the stdin of spec run in the guest;
 * *code gets its exit status (-1 when it never ended). */
static int tar_in(bng_agent_link *link, const bng_vm_row *vm, json_t *spec, cp_job *j, int *code)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return bng_err_errno(BANGER_EIO, errno, "socketpair");
	j->tar_fd = sv[0];
	j->exec_fd = sv[1];
	int rc = 0;
	if (pthread_create(&j->thread, NULL, pack_main, j) != 0)
		rc = bng_err(BANGER_ENOMEM, "cannot start the tar thread");
	bng_exec_io io = {.output = tar_stderr, .ud = j, .stdin_pull = pull_stdin};
	if (!rc) {
		rc = bng_vm_guest_run(link, vm, j->op, spec, &io, 0, code, NULL);
		shutdown(sv[1], SHUT_RDWR); /* unblocks a producer the exec stopped reading */
		pthread_join(j->thread, NULL);
	}
	close(sv[0]);
	close(sv[1]);
	j->tar_fd = j->exec_fd = -1;
	return rc;
}

int bng_vm_tar_in(bng_agent_link *link, const bng_vm_row *vm, const char *host_path, const char *top, json_t *spec,
		  bng_output *out, int *code, size_t *bytes, bng_op *op)
{
	cp_job j = {.op = op, .tar_fd = -1, .exec_fd = -1, .out = out};
	j.host_path = bng_strdup(host_path);
	j.top = bng_strdup(top);
	*code = -1;
	int rc = tar_in(link, vm, spec, &j, code);
	/* the producer's refusal, or its error when the command did not fail first */
	if (j.rc == BANGER_EPERM || (j.rc && *code <= 0))
		rc = bng_err(j.rc, "%s", j.err);
	if (!rc && bytes)
		*bytes = j.bytes;
	free(j.host_path);
	free(j.top);
	return rc;
}

static bool guest_is_dir(bng_agent_link *link, const bng_vm_row *vm, const char *path, bng_op *op)
{
	int code = -1;
	return guest_run(link, vm, json_pack("[s,s,s]", "test", "-d", path), NULL, op, &code) == 0 && code == 0;
}

int bng_m_vm_cp(bng_engine *e, json_t *params, json_t **result, bng_op *op)
{
	const char *host = json_string_value(json_object_get(params, "host_path"));
	const char *guest = json_string_value(json_object_get(params, "guest_path"));
	const char *dir = json_string_value(json_object_get(params, "direction"));
	bool in = dir && !strcmp(dir, "in");
	if (!dir || (!in && strcmp(dir, "out")))
		return bng_err(BANGER_EINVAL, "vm.cp: direction is \"in\" (host to guest) or \"out\"");
	if (!host || host[0] != '/' || !guest || guest[0] != '/')
		return bng_err(BANGER_EINVAL, "vm.cp: host_path and guest_path must be absolute paths");
	bng_vm_row *vm;
	bng_agent_link *link;
	int rc = bng_vm_link(e, json_string_value(json_object_get(params, "name")), &vm, &link);
	if (rc)
		return rc;
	cp_job j = {.op = op, .tar_fd = -1, .exec_fd = -1};
	int sv[2] = {-1, -1};
	char *host_copy = bng_strdup(host), *guest_copy = bng_strdup(guest);
	char *host_dir = bng_strdup(dirname(host_copy)), *guest_dir = bng_strdup(dirname(guest_copy));
	strcpy(host_copy, host);
	strcpy(guest_copy, guest);
	char *host_base = bng_strdup(basename(host_copy)), *guest_base = bng_strdup(basename(guest_copy));
	struct stat st;
	int code = -1; /* the guest tar's exit status; -1 while it has not ended */
	if (!rc && in && lstat(host, &st) != 0)
		rc = bng_err_errno(BANGER_ENOTFOUND, errno, "cannot copy %s", host);
	if (!rc && in) {
		/* into an existing directory as its own name, else as the name given */
		bool into = guest_is_dir(link, vm, guest, op);
		j.host_path = bng_strdup(host);
		j.top = bng_strdup(into ? host_base : guest_base);
		/* GNU tar sets a directory's times when it leaves it, and a later
		 * entry inside changes them again: delay to the end. busybox tar has
		 * no such problem and ignores TAR_OPTIONS. */
		json_t *spec = json_pack("{s:[s,s,s,s,s,s,s],s:[s]}", "argv", "tar", "-x", "-p", "-f", "-", "-C",
					 into ? guest : guest_dir, "env", "TAR_OPTIONS=--delay-directory-restore");
		rc = tar_in(link, vm, spec, &j, &code);
		json_decref(spec);
	} else if (!rc && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		rc = bng_err_errno(BANGER_EIO, errno, "socketpair");
	} else if (!rc) {
		bool into = stat(host, &st) == 0 && S_ISDIR(st.st_mode);
		j.host_path = bng_strdup(into ? host : host_dir);
		j.top = bng_strdup(into ? guest_base : host_base);
		j.guest_top = bng_strdup(guest_base);
		j.tar_fd = sv[0];
		j.exec_fd = sv[1];
		if (stat(j.host_path, &st) != 0 || !S_ISDIR(st.st_mode))
			rc = bng_err(BANGER_ENOTFOUND, "cannot copy to %s: %s is not a directory", host, j.host_path);
		if (!rc && pthread_create(&j.thread, NULL, unpack_main, &j) != 0)
			rc = bng_err(BANGER_ENOMEM, "cannot start the tar thread");
		bng_exec_io io = {.output = push_output, .ud = &j};
		if (!rc) {
			rc = guest_run(link, vm, json_pack("[s,s,s,s,s,s,s]", "tar", "-c", "-f", "-", "-C", guest_dir, guest_base), &io,
				       op, &code);
			shutdown(sv[1], SHUT_WR); /* the end of the stream for the unpacker */
			pthread_join(j.thread, NULL);
		}
	}
	/* A refusal of what the guest sent comes first; then a guest tar that
	 * failed (its own words), whose short stream the unpacker also saw;
	 * then the tar thread's error, which says more than a broken pipe. */
	bool tar_failed = code > 0;
	char *said = bng_strdup(""); /* its lines, joined with "; " */
	for (char *line = j.tar_err, *nl; *line; line = nl ? nl + 1 : line + strlen(line)) {
		nl = strchr(line, '\n');
		char *more = bng_asprintf("%s%s%.*s", said, *said ? "; " : "", (int)(nl ? nl - line : (long)strlen(line)), line);
		free(said);
		said = more;
	}
	if (j.rc == BANGER_EPERM || (j.rc && !tar_failed))
		rc = bng_err(j.rc, "%s", j.err);
	else if ((!rc || j.rc) && tar_failed)
		rc = bng_err(BANGER_EIO, "tar in the guest failed with status %d%s%s", code, *said ? ": " : "",
			     *said ? said : "");
	free(said);
	if (!rc) {
		progress(&j, j.bytes, true);
		*result = json_pack("{s:I,s:I}", "bytes", (json_int_t)j.bytes, "files", (json_int_t)j.files);
	}
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	free(j.host_path);
	free(j.top);
	free(j.guest_top);
	free(host_copy);
	free(guest_copy);
	free(host_dir);
	free(guest_dir);
	free(host_base);
	free(guest_base);
	bng_agent_link_unref(link);
	bng_vm_free(vm);
	return rc;
}
