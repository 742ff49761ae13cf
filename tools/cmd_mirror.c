/*
 * keytrail mirror: copies a log's static read API (C2SP tlog-tiles) into a
 * directory, verifying as it goes: the checkpoint against the log's key,
 * every full tile against its parent, the partial tiles against the root,
 * every entry bundle against its level-0 tile (kt_tiles_verify).  The
 * checkpoint is written last, only when everything verified, so a
 * directory with a checkpoint is a complete, verified replica that any
 * static web server can serve.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "httpc.h"
#include "keytrail/checkpoint.h"
#include "keytrail/note.h"
#include "keytrail/tile.h"

struct mirror {
	struct httpc *c;
	const char *out;
	uint64_t files;
	uint64_t bytes;
	char err[256];
};

/* mkdir -p of the directories in path (not its last element). */
static int
mirror_mkdirs(char *path)
{
	for (char *p = path + 1; *p != 0; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return 0;
}

static int
mirror_write(struct mirror *m, const char *rel, const uint8_t *p, size_t len)
{
	char path[2048], tmp[2100];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", m->out, rel) >=
		(int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) ||
	    mirror_mkdirs(path) != 0)
		return -1;
	/* Write then rename: a reader never sees half a file. */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		return -1;
	if (write(fd, p, len) != (ssize_t)len || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	m->files++;
	m->bytes += len;
	return 0;
}

/* kt_tile_read_fn: fetch a tile, keep a copy on disk. */
static int
mirror_read(void *ctx, const struct kt_tile *t, struct kt_buf *data)
{
	struct mirror *m = ctx;
	char rel[KT_TILE_PATH_MAX + 1];
	struct httpc_resp r;
	size_t n;
	int rc;

	rel[0] = '/';
	if (kt_tile_format(t, rel + 1, sizeof(rel) - 1, &n) != KT_OK)
		return KT_EINVAL;
	if (httpc_do(m->c, "GET", rel, NULL, NULL, 0, &r) != KT_OK) {
		snprintf(m->err, sizeof(m->err), "%s: connection failed", rel);
		return KT_EIO;
	}
	if (r.status != 200) {
		snprintf(m->err, sizeof(m->err), "%s: HTTP %d", rel, r.status);
		httpc_resp_free(&r);
		return KT_ENOTFOUND;
	}
	rc = kt_buf_append(data, r.body.p, r.body.len);
	if (rc == KT_OK &&
	    mirror_write(m, rel + 1, r.body.p, r.body.len) != 0) {
		snprintf(m->err, sizeof(m->err), "%s: cannot write: %s", rel,
		    strerror(errno));
		rc = KT_EIO;
	}
	httpc_resp_free(&r);
	return rc;
}

int
cmd_mirror(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "out", required_argument, NULL, 'o' },
		{ "vkey", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL, *vkeys = NULL;
	struct mirror m;
	struct kt_note_vkey vkey;
	struct kt_checkpoint_trust trust;
	struct kt_checkpoint cp;
	struct httpc_resp r, note;
	char err[256];
	json_t *j = NULL;
	int ch, rc = 1;

	memset(&m, 0, sizeof(m));
	memset(&note, 0, sizeof(note));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			url = optarg;
			break;
		case 'o':
			m.out = optarg;
			break;
		case 'k':
			vkeys = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (url == NULL || m.out == NULL || optind != argc)
		goto usage;
	if (httpc_new(url, 120, &m.c, err, sizeof(err)) != KT_OK) {
		fprintf(stderr, "keytrail mirror: %s\n", err);
		return 1;
	}
	if (vkeys == NULL) {
		/* Trust on first use: take the key the log announces. */
		if (httpc_do(m.c, "GET", "/v1/log", NULL, NULL, 0, &r) !=
			KT_OK ||
		    r.status != 200) {
			fprintf(
			    stderr, "keytrail mirror: %s/v1/log failed\n", url);
			goto out;
		}
		j = json_loadb((const char *)r.body.p, r.body.len, 0, NULL);
		httpc_resp_free(&r);
		vkeys = json_string_value(json_object_get(j, "vkey"));
		if (vkeys == NULL) {
			fprintf(
			    stderr, "keytrail mirror: no vkey in /v1/log\n");
			goto out;
		}
	}
	if (kt_note_vkey_parse(vkeys, strlen(vkeys), &vkey) != KT_OK) {
		fprintf(
		    stderr, "keytrail mirror: not a verifier key: %s\n", vkeys);
		goto out;
	}
	memset(&trust, 0, sizeof(trust));
	trust.log = &vkey;
	trust.origin.p = (const uint8_t *)vkey.name;
	trust.origin.len = vkey.namelen;
	if (httpc_do(m.c, "GET", "/checkpoint", NULL, NULL, 0, &note) !=
		KT_OK ||
	    note.status != 200 ||
	    kt_checkpoint_open(note.body.p, note.body.len, &trust, NULL, &cp) !=
		KT_OK) {
		fprintf(stderr,
		    "keytrail mirror: the checkpoint does not verify with %s\n",
		    vkeys);
		goto out;
	}
	if (mkdir(m.out, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "keytrail mirror: %s: %s\n", m.out,
		    strerror(errno));
		goto out;
	}
	if ((rc = kt_tiles_verify(cp.size, &cp.root, mirror_read, &m)) !=
	    KT_OK) {
		fprintf(stderr, "keytrail mirror: %s (%s)\n",
		    m.err[0] ? m.err : "a tile does not verify",
		    kt_strerror(rc));
		rc = 1;
		goto out;
	}
	if (mirror_write(&m, "checkpoint", note.body.p, note.body.len) != 0) {
		fprintf(
		    stderr, "keytrail mirror: cannot write the checkpoint\n");
		rc = 1;
		goto out;
	}
	printf("keytrail mirror: %llu entries, %llu files, %llu bytes in %s, "
	       "all verified\n",
	    (unsigned long long)cp.size, (unsigned long long)m.files,
	    (unsigned long long)m.bytes, m.out);
	rc = 0;
out:
	httpc_resp_free(&note);
	json_decref(j);
	httpc_free(m.c);
	return rc;
usage:
	fprintf(stderr,
	    "usage: keytrail mirror --url URL --out DIR [--vkey VKEY]\n");
	return 2;
}
