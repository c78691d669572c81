/* The modules-tree index and a small depmod. Debian's linux-image packages
 * ship no modules.dep (dpkg's postinst runs depmod), so banger computes it
 * from the depends= and softdep= strings modpost leaves in each module. */
#include "kmod.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MODULE_FILE (256u << 20)

/* Soft dependencies name crypto algorithms, not modules: the modules that
 * provide them, generic first (crc32c_intel needs SSE4.2, which TCG's
 * default CPU lacks). */
static const struct {
	const char *alias;
	const char *mods[2];
} algo_providers[] = {
	{"crc32c", {"crc32c_generic", "crc32c_intel"}},
};

static void strv_push(char ***v, size_t *n, char *s)
{
	char **p = realloc(*v, (*n + 1) * sizeof(**v));
	if (!p)
		abort();
	p[(*n)++] = s;
	*v = p;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void fold_name(char *s)
{
	for (; *s; s++)
		if (*s == '-')
			*s = '_';
}

char *bng_kmod_name_from_path(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	char *name = bng_strdup(base);
	char *dot = strstr(name, ".ko");
	if (dot)
		*dot = '\0';
	fold_name(name);
	return name;
}

static void kmod_clear(bng_kmod *m)
{
	free(m->name);
	free(m->path);
	strv_free(m->deps, m->ndeps);
	strv_free(m->pre, m->npre);
	memset(m, 0, sizeof(*m));
}

void bng_kmod_index_free(bng_kmod_index *idx)
{
	for (size_t i = 0; i < idx->n; i++)
		kmod_clear(&idx->mods[i]);
	free(idx->mods);
	strv_free(idx->builtin, idx->nbuiltin);
	memset(idx, 0, sizeof(*idx));
}

static int cmp_mod(const void *a, const void *b) { return strcmp(((const bng_kmod *)a)->name, ((const bng_kmod *)b)->name); }
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

bng_kmod *bng_kmod_find(const bng_kmod_index *idx, const char *name)
{
	bng_kmod key = {.name = (char *)name};
	return idx->n ? bsearch(&key, idx->mods, idx->n, sizeof(key), cmp_mod) : NULL;
}

bool bng_kmod_builtin(const bng_kmod_index *idx, const char *name)
{
	return idx->nbuiltin && bsearch(&name, idx->builtin, idx->nbuiltin, sizeof(char *), cmp_str);
}

static bng_kmod *index_add(bng_kmod_index *idx, size_t *cap, const char *relpath)
{
	if (idx->n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		bng_kmod *p = realloc(idx->mods, *cap * sizeof(*p));
		if (!p)
			abort();
		idx->mods = p;
	}
	bng_kmod *m = &idx->mods[idx->n++];
	memset(m, 0, sizeof(*m));
	m->path = bng_strdup(relpath);
	m->name = bng_kmod_name_from_path(relpath);
	return m;
}

/* Sorts, and refuses two files claiming one name (the kernel would load
 * whichever came first; banger would rather say so). */
static int index_finish(bng_kmod_index *idx, const char *root)
{
	if (idx->n)
		qsort(idx->mods, idx->n, sizeof(*idx->mods), cmp_mod);
	if (idx->nbuiltin)
		qsort(idx->builtin, idx->nbuiltin, sizeof(char *), cmp_str);
	for (size_t i = 1; i < idx->n; i++)
		if (!strcmp(idx->mods[i - 1].name, idx->mods[i].name))
			return bng_err(BANGER_EINVAL, "modules tree %s has two modules named %s (%s and %s): remove one",
				       root, idx->mods[i].name, idx->mods[i - 1].path, idx->mods[i].path);
	return 0;
}

/* modules.builtin: one relative path per line. Absent is fine. */
static int load_builtin(bng_kmod_index *idx, const char *root)
{
	char *path = bng_asprintf("%s/modules.builtin", root);
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		free(path);
		return e == ENOENT ? 0 : bng_err_errno(BANGER_EIO, e, "cannot open %s/modules.builtin", root);
	}
	free(path);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		line[strcspn(line, "\r\n")] = '\0';
		if (*line && *line != '#')
			strv_push(&idx->builtin, &idx->nbuiltin, bng_kmod_name_from_path(line));
	}
	free(line);
	fclose(f);
	return 0;
}

/* ---- .modinfo ---- */

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static uint32_t rd32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Splits a comma- or space-separated list into names. */
static void push_names(char ***v, size_t *n, const char *list, size_t len)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (list[i] == ',' || list[i] == ' '))
			i++;
		size_t s = i;
		while (i < len && list[i] != ',' && list[i] != ' ')
			i++;
		if (i > s) {
			char *name = bng_xmalloc(i - s + 1);
			memcpy(name, list + s, i - s);
			name[i - s] = '\0';
			fold_name(name);
			strv_push(v, n, name);
		}
	}
}

/* "pre: a b post: c" -> the names after "pre:". */
static void push_softdep_pre(bng_kmod *m, const char *s, size_t len)
{
	bool pre = false;
	size_t i = 0;
	while (i < len) {
		while (i < len && s[i] == ' ')
			i++;
		size_t st = i;
		while (i < len && s[i] != ' ')
			i++;
		size_t tl = i - st;
		if (tl == 4 && !memcmp(s + st, "pre:", 4))
			pre = true;
		else if (tl == 5 && !memcmp(s + st, "post:", 5))
			pre = false;
		else if (tl && pre)
			push_names(&m->pre, &m->npre, s + st, tl);
	}
}

int bng_kmod_parse_modinfo(const void *elf, size_t len, const char *what, bng_kmod *m)
{
	const unsigned char *e = elf;
	if (len < 64 || memcmp(e, "\177ELF", 4) != 0 || e[4] != 2 /* ELFCLASS64 */ || e[5] != 1 /* LSB */)
		return bng_err(BANGER_EINVAL, "module %s is not a little-endian ELF64 file", what);
	uint64_t shoff = rd64(e + 0x28);
	uint16_t shentsize = rd16(e + 0x3a), shnum = rd16(e + 0x3c), shstrndx = rd16(e + 0x3e);
	if (shentsize < 64 || shstrndx >= shnum || shoff > len || (uint64_t)shnum * shentsize > len - shoff)
		return bng_err(BANGER_EINVAL, "module %s has a corrupt ELF section table", what);
	const unsigned char *strsh = e + shoff + (size_t)shstrndx * shentsize;
	uint64_t stroff = rd64(strsh + 0x18), strsize = rd64(strsh + 0x20);
	if (stroff > len || strsize > len - stroff)
		return bng_err(BANGER_EINVAL, "module %s has a corrupt section name table", what);
	const char *names = (const char *)e + stroff;
	for (uint16_t i = 0; i < shnum; i++) {
		const unsigned char *sh = e + shoff + (size_t)i * shentsize;
		uint32_t nameoff = rd32(sh);
		if (nameoff >= strsize || strnlen(names + nameoff, strsize - nameoff) != 8 ||
		    memcmp(names + nameoff, ".modinfo", 8) != 0)
			continue;
		uint64_t off = rd64(sh + 0x18), size = rd64(sh + 0x20);
		if (off > len || size > len - off)
			return bng_err(BANGER_EINVAL, "module %s has a corrupt .modinfo section", what);
		const char *p = (const char *)e + off, *end = p + size;
		while (p < end) {
			size_t n = strnlen(p, (size_t)(end - p));
			if (n > 8 && !memcmp(p, "depends=", 8))
				push_names(&m->deps, &m->ndeps, p + 8, n - 8);
			else if (n > 8 && !memcmp(p, "softdep=", 8))
				push_softdep_pre(m, p + 8, n - 8);
			else if (n > 5 && !memcmp(p, "name=", 5)) {
				free(m->name);
				m->name = bng_xmalloc(n - 4);
				memcpy(m->name, p + 5, n - 5);
				m->name[n - 5] = '\0';
				fold_name(m->name);
			}
			p += n + 1;
		}
		return 0;
	}
	return 0; /* no .modinfo: a module without dependencies */
}

int bng_kmod_read(const char *root, const char *relpath, void **out, size_t *len)
{
	char *path = bng_asprintf("%s/%s", root, relpath);
	char *buf;
	size_t n;
	int rc = bng_read_file(path, &buf, &n);
	if (rc) {
		free(path);
		return rc;
	}
	if (bng_kernel_module_suffix(relpath) > 0) {
		void *plain;
		size_t plen;
		rc = bng_kernel_unpack(buf, n, MAX_MODULE_FILE, path, &plain, &plen);
		free(buf);
		if (!rc) {
			*out = plain;
			*len = plen;
		}
	} else {
		*out = buf;
		*len = n;
	}
	free(path);
	return rc;
}

/* Collects module files under dir (relative path rel) into the index. */
static int scan_dir(bng_kmod_index *idx, size_t *cap, const char *root, const char *rel, int depth)
{
	if (depth > 32)
		return bng_err(BANGER_EINVAL, "modules tree %s nests deeper than 32 directories", root);
	char *path = *rel ? bng_asprintf("%s/%s", root, rel) : bng_strdup(root);
	DIR *d = opendir(path);
	if (!d) {
		int rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot read directory %s", path);
		free(path);
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		/* build/source point at kernel headers, never at modules */
		if (!*rel && (!strcmp(de->d_name, "build") || !strcmp(de->d_name, "source")))
			continue;
		char *child = *rel ? bng_asprintf("%s/%s", rel, de->d_name) : bng_strdup(de->d_name);
		char *full = bng_asprintf("%s/%s", root, child);
		struct stat st;
		if (lstat(full, &st) != 0)
			rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot stat %s", full);
		else if (S_ISDIR(st.st_mode))
			rc = scan_dir(idx, cap, root, child, depth + 1);
		else if (S_ISREG(st.st_mode) && bng_kernel_module_suffix(de->d_name) >= 0)
			index_add(idx, cap, child);
		free(full);
		free(child);
	}
	closedir(d);
	free(path);
	return rc;
}

int bng_kmod_index_scan(bng_kmod_index *idx, const char *root)
{
	memset(idx, 0, sizeof(*idx));
	struct stat st;
	if (!root || stat(root, &st) != 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return bng_err(BANGER_EINVAL, "modules root %s is not a directory", root);
	size_t cap = 0;
	int rc = scan_dir(idx, &cap, root, "", 0);
	if (!rc)
		rc = load_builtin(idx, root);
	for (size_t i = 0; !rc && i < idx->n; i++) {
		void *buf;
		size_t len;
		bng_kmod *m = &idx->mods[i];
		if (!(rc = bng_kmod_read(root, m->path, &buf, &len))) {
			rc = bng_kmod_parse_modinfo(buf, len, m->path, m);
			free(buf);
		}
	}
	if (!rc)
		rc = index_finish(idx, root);
	if (rc)
		bng_kmod_index_free(idx);
	return rc;
}

/* modules.dep: "kernel/a.ko: kernel/b.ko kernel/c.ko" per line. */
static int load_dep(bng_kmod_index *idx, const char *root, FILE *f)
{
	size_t cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	int rc = 0;
	unsigned lineno = 0;
	while (!rc && getline(&line, &lcap, f) > 0) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!*line || *line == '#')
			continue;
		char *colon = strchr(line, ':');
		if (!colon || colon == line) {
			rc = bng_err(BANGER_EINVAL, "%s/modules.dep line %u is not \"module: deps\": run depmod or "
				     "re-import the kernel", root, lineno);
			break;
		}
		*colon = '\0';
		bng_kmod *m = index_add(idx, &cap, line);
		for (char *tok = strtok(colon + 1, " \t"); tok; tok = strtok(NULL, " \t"))
			strv_push(&m->deps, &m->ndeps, bng_kmod_name_from_path(tok));
		/* The list is last-to-load first; keep deps in load order. */
		for (size_t i = 0; i < m->ndeps / 2; i++) {
			char *t = m->deps[i];
			m->deps[i] = m->deps[m->ndeps - 1 - i];
			m->deps[m->ndeps - 1 - i] = t;
		}
	}
	free(line);
	return rc;
}

/* modules.softdep: "softdep ext4 pre: crc32c" per line. Absent is fine. */
static int load_softdep(bng_kmod_index *idx, const char *root)
{
	char *path = bng_asprintf("%s/modules.softdep", root);
	FILE *f = fopen(path, "re");
	free(path);
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, "softdep ", 8) != 0)
			continue;
		char *name = line + 8, *rest = strchr(name, ' ');
		if (!rest)
			continue;
		*rest++ = '\0';
		fold_name(name);
		bng_kmod *m = bng_kmod_find(idx, name);
		if (m)
			push_softdep_pre(m, rest, strlen(rest));
	}
	free(line);
	fclose(f);
	return 0;
}

int bng_kmod_index_load(bng_kmod_index *idx, const char *root)
{
	memset(idx, 0, sizeof(*idx));
	if (!root)
		return 0;
	char *path = bng_asprintf("%s/modules.dep", root);
	FILE *f = fopen(path, "re");
	free(path);
	if (!f)
		return bng_kmod_index_scan(idx, root);
	int rc = load_dep(idx, root, f);
	fclose(f);
	if (!rc)
		rc = load_builtin(idx, root);
	if (!rc)
		rc = index_finish(idx, root);
	if (!rc)
		rc = load_softdep(idx, root);
	if (rc)
		bng_kmod_index_free(idx);
	return rc;
}

/* ---- resolution ---- */

enum { UNSEEN, VISITING, DONE };

static void order_push(bng_kmod ***order, size_t *n, bng_kmod *m)
{
	bng_kmod **p = realloc(*order, (*n + 1) * sizeof(*p));
	if (!p)
		abort();
	p[(*n)++] = m;
	*order = p;
}

/* Depth-first, dependencies before dependents. soft also follows "pre"
 * soft dependencies (for the initramfs; modules.dep has only hard ones). */
static int visit(bng_kmod_index *idx, bng_kmod *m, bool soft, bng_kmod ***order, size_t *n, int depth)
{
	if (m->mark == DONE)
		return 0;
	if (m->mark == VISITING || depth > 64)
		return bng_err(BANGER_EINVAL, "module %s depends on itself through its dependencies: the modules tree "
			       "is corrupt", m->name);
	m->mark = VISITING;
	int rc = 0;
	/* Soft "pre" dependencies are best effort: load them when present. */
	for (size_t i = 0; soft && !rc && i < m->npre; i++) {
		bng_kmod *d = bng_kmod_find(idx, m->pre[i]);
		for (size_t a = 0; !d && a < BNG_ARRAY_LEN(algo_providers); a++) {
			if (strcmp(algo_providers[a].alias, m->pre[i]) != 0)
				continue;
			for (size_t k = 0; k < BNG_ARRAY_LEN(algo_providers[a].mods); k++) {
				if (bng_kmod_builtin(idx, algo_providers[a].mods[k]))
					break; /* the algorithm is built in */
				if ((d = bng_kmod_find(idx, algo_providers[a].mods[k])))
					break;
			}
		}
		if (d && d != m)
			rc = visit(idx, d, soft, order, n, depth + 1);
	}
	for (size_t i = 0; !rc && i < m->ndeps; i++) {
		bng_kmod *d = bng_kmod_find(idx, m->deps[i]);
		if (d)
			rc = visit(idx, d, soft, order, n, depth + 1);
		else if (!bng_kmod_builtin(idx, m->deps[i]))
			rc = bng_err(BANGER_EINVAL, "module %s needs %s, which is not in the modules tree: the kernel's "
				     "modules are incomplete (re-import the whole kernel package)", m->name, m->deps[i]);
	}
	if (!rc) {
		m->mark = DONE;
		order_push(order, n, m);
	}
	return rc;
}

int bng_kmod_resolve(bng_kmod_index *idx, const char *const *wanted, size_t nwanted, bng_kmod ***order, size_t *n)
{
	for (size_t i = 0; i < idx->n; i++)
		idx->mods[i].mark = UNSEEN;
	for (size_t i = 0; i < nwanted; i++) {
		char *name = bng_strdup(wanted[i]);
		fold_name(name);
		bng_kmod *m = bng_kmod_builtin(idx, name) ? NULL : bng_kmod_find(idx, name);
		free(name);
		int rc = m ? visit(idx, m, true, order, n, 0) : 0;
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- depmod ---- */

static int write_all(FILE *f, const char *path)
{
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
		int e = errno;
		fclose(f);
		return bng_err_errno(BANGER_EIO, e, "cannot write %s", path);
	}
	return fclose(f) == 0 ? 0 : bng_err_errno(BANGER_EIO, errno, "cannot write %s", path);
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp((*(bng_kmod *const *)a)->path, (*(bng_kmod *const *)b)->path);
}

int bng_kernel_depmod(const char *modules_root)
{
	bng_kmod_index idx;
	int rc = bng_kmod_index_scan(&idx, modules_root);
	if (rc)
		return rc;
	char *dep_path = bng_asprintf("%s/modules.dep", modules_root);
	char *soft_path = bng_asprintf("%s/modules.softdep", modules_root);
	char *dep_tmp = bng_asprintf("%s.tmp", dep_path), *soft_tmp = bng_asprintf("%s.tmp", soft_path);
	FILE *dep = fopen(dep_tmp, "we"), *soft = fopen(soft_tmp, "we");
	if (!dep || !soft) {
		rc = bng_err_errno(bng_code_from_errno(errno), errno, "cannot create files in %s", modules_root);
		if (dep)
			fclose(dep);
		if (soft)
			fclose(soft);
		goto out;
	}
	fputs("# Soft dependencies extracted from modules themselves (written by banger).\n", soft);
	/* In path order, like depmod; each line lists the whole closure so
	 * that loading it last to first works (kmod and busybox modprobe). */
	bng_kmod **by_path = bng_xcalloc(idx.n, sizeof(*by_path));
	for (size_t i = 0; i < idx.n; i++)
		by_path[i] = &idx.mods[i];
	if (idx.n)
		qsort(by_path, idx.n, sizeof(*by_path), cmp_path);
	for (size_t i = 0; i < idx.n; i++) {
		bng_kmod *m = by_path[i];
		fprintf(dep, "%s:", m->path);
		for (size_t k = 0; k < idx.n; k++)
			idx.mods[k].mark = UNSEEN;
		m->mark = VISITING;
		bng_kmod **closure = NULL;
		size_t nc = 0;
		for (size_t d = 0; d < m->ndeps; d++) {
			bng_kmod *dm = bng_kmod_find(&idx, m->deps[d]);
			/* An unresolvable dependency is depmod's warning, not a failed import:
			 * the module just cannot load. */
			if (dm && dm->mark == UNSEEN && visit(&idx, dm, false, &closure, &nc, 1) != 0)
				bng_err_clear();
		}
		for (size_t c = nc; c > 0; c--)
			fprintf(dep, " %s", closure[c - 1]->path);
		fputc('\n', dep);
		free(closure);
		if (m->npre) {
			fprintf(soft, "softdep %s pre:", m->name);
			for (size_t p = 0; p < m->npre; p++)
				fprintf(soft, " %s", m->pre[p]);
			fputc('\n', soft);
		}
	}
	free(by_path);
	int r1 = write_all(dep, dep_tmp), r2 = write_all(soft, soft_tmp);
	rc = r1 ? r1 : r2;
	if (!rc && (rename(dep_tmp, dep_path) != 0 || rename(soft_tmp, soft_path) != 0))
		rc = bng_err_errno(BANGER_EIO, errno, "cannot write modules.dep in %s", modules_root);
	if (rc) {
		unlink(dep_tmp);
		unlink(soft_tmp);
	} else { /* kmod prefers the binary index, which would now be stale */
		char *bin = bng_asprintf("%s/modules.dep.bin", modules_root);
		unlink(bin);
		free(bin);
	}
out:
	free(dep_path);
	free(soft_path);
	free(dep_tmp);
	free(soft_tmp);
	bng_kmod_index_free(&idx);
	return rc;
}
