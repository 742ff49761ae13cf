/*
 * C2SP signed notes, verifier keys and cosignature/v1 (c2sp.org/signed-note,
 * c2sp.org/tlog-cosignature).  The structure follows Go's
 * golang.org/x/mod/sumdb/note (Open, Sign, NewVerifier), but where the
 * specification leaves room this code takes the strict reading: base64
 * must be canonical, and every signature line of a known key must verify,
 * not only the first one.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "edverify.h"
#include "keytrail/encoding.h"
#include "keytrail/note.h"

/* The em dash U+2014 and a space: the start of every signature line. */
static const uint8_t note_sig_prefix[] = { 0xe2, 0x80, 0x94, ' ' };

/* The first line of a cosignature/v1 signed message. */
static const char note_cosig_header[] = "cosignature/v1\ntime ";

/* Go's signer key strings start with this. */
static const char note_skey_prefix[] = "PRIVATE+KEY+";

/* Decoded sizes of the two supported signature kinds, key ID included. */
#define NOTE_ED25519_SIGLEN (4 + KT_ED25519_SIG_SIZE)
#define NOTE_COSIG_SIGLEN (4 + 8 + KT_ED25519_SIG_SIZE)

/* Decoded size of a verifier or signer key: type byte, then 32 bytes. */
#define NOTE_KEYLEN (1 + KT_ED25519_PUB_SIZE)

struct kt_note_ed25519 {
	EVP_PKEY *pkey;
	uint8_t pub[KT_ED25519_PUB_SIZE];
};

/*
 * Decodes the UTF-8 sequence at p[*i] (RFC 3629 section 4: shortest form
 * only, no surrogates, nothing above U+10FFFF), stores the code point in
 * *cp and advances *i.  Returns 0 for an invalid sequence.
 */
static int
note_utf8_next(const uint8_t *p, size_t len, size_t *i, uint32_t *cp)
{
	uint8_t c = p[*i];
	uint8_t lo = 0x80, hi = 0xbf;
	size_t need;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		*i += 1;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		v = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		v = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (len - *i - 1 < need)
		return 0;
	for (size_t k = 1; k <= need; k++) {
		uint8_t b = p[*i + k];

		/* Only the first continuation byte has the narrowed range. */
		if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf))
			return 0;
		v = (v << 6) | (b & 0x3f);
	}
	*cp = v;
	*i += need + 1;
	return 1;
}

/* Unicode White_Space, as Go's unicode.IsSpace sees it. */
static int
note_is_space(uint32_t cp)
{
	if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d))
		return 1;
	if (cp == 0x85 || cp == 0xa0 || cp == 0x1680)
		return 1;
	if (cp >= 0x2000 && cp <= 0x200a)
		return 1;
	return cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
	    cp == 0x3000;
}

int
kt_note_text_check(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint32_t cp;

		if (!note_utf8_next(p, len, &i, &cp))
			return KT_EPARSE;
		if (cp < 0x20 && cp != '\n')
			return KT_EPARSE;
	}
	return KT_OK;
}

int
kt_note_name_check(const uint8_t *name, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return KT_EPARSE;
	while (i < len) {
		uint32_t cp;

		if (!note_utf8_next(name, len, &i, &cp))
			return KT_EPARSE;
		if (cp < 0x20 || cp == '+' || note_is_space(cp))
			return KT_EPARSE;
	}
	return KT_OK;
}

int
kt_note_key_id(const char *name, size_t namelen, uint8_t type,
    const uint8_t pub[KT_ED25519_PUB_SIZE], uint32_t *id)
{
	uint8_t in[KT_NOTE_NAME_MAX + 2 + KT_ED25519_PUB_SIZE];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (namelen > KT_NOTE_NAME_MAX)
		return KT_EINVAL;
	if (namelen > 0)
		memcpy(in, name, namelen);
	in[namelen] = '\n';
	in[namelen + 1] = type;
	memcpy(in + namelen + 2, pub, KT_ED25519_PUB_SIZE);
	if (EVP_Digest(in, namelen + 2 + KT_ED25519_PUB_SIZE, md, &mdlen,
		EVP_sha256(), NULL) != 1 ||
	    mdlen != KT_HASH_SIZE)
		return KT_EINTERNAL;
	*id = kt_get_u32be(md);
	return KT_OK;
}

/* Types whose keys are 32-byte Ed25519 public keys, the only ones here. */
static int
note_type_ok(uint8_t type)
{
	return type == KT_NOTE_ED25519 || type == KT_NOTE_COSIG_V1;
}

int
kt_note_vkey_init(const char *name, size_t namelen, uint8_t type,
    const uint8_t pub[KT_ED25519_PUB_SIZE], struct kt_note_vkey *out)
{
	struct kt_note_vkey k;

	if (namelen > KT_NOTE_NAME_MAX || !note_type_ok(type) ||
	    kt_note_name_check((const uint8_t *)name, namelen) != KT_OK)
		return KT_EINVAL;
	memset(&k, 0, sizeof(k));
	memcpy(k.name, name, namelen);
	k.namelen = namelen;
	k.type = type;
	memcpy(k.pub, pub, KT_ED25519_PUB_SIZE);
	if (kt_note_key_id(k.name, k.namelen, k.type, k.pub, &k.id) != KT_OK)
		return KT_EINTERNAL;
	*out = k;
	return KT_OK;
}

/*
 * Splits "<name>+<8 hex>+<rest>" (the common shape of verifier and signer
 * key strings) and checks the name and the hex.  On success stores the
 * name, the key ID and the rest.
 */
static int
note_split_key(const char *s, size_t len, struct kt_bytes *name, uint32_t *id,
    struct kt_bytes *rest)
{
	const char *plus = memchr(s, '+', len);
	uint8_t idb[4];
	size_t namelen, left;

	if (plus == NULL)
		return KT_EPARSE;
	namelen = (size_t)(plus - s);
	if (kt_note_name_check((const uint8_t *)s, namelen) != KT_OK)
		return KT_EPARSE;
	if (namelen > KT_NOTE_NAME_MAX)
		return KT_ETOOBIG;
	left = len - namelen - 1;
	if (left < 9 || plus[9] != '+')
		return KT_EPARSE;
	if (kt_hex_decode_exact(plus + 1, 8, idb, sizeof(idb)) != KT_OK)
		return KT_EPARSE;
	name->p = (const uint8_t *)s;
	name->len = namelen;
	*id = kt_get_u32be(idb);
	rest->p = (const uint8_t *)plus + 10;
	rest->len = left - 9;
	return KT_OK;
}

int
kt_note_vkey_parse(const char *s, size_t len, struct kt_note_vkey *out)
{
	struct kt_bytes name, rest;
	struct kt_note_vkey k;
	uint8_t raw[NOTE_KEYLEN];
	uint32_t id;
	int rc;

	if ((rc = note_split_key(s, len, &name, &id, &rest)) != KT_OK)
		return rc;
	if (kt_b64_decode_exact(
		(const char *)rest.p, rest.len, raw, sizeof(raw)) != KT_OK)
		return KT_EPARSE;
	if (!note_type_ok(raw[0]))
		return KT_EPARSE;
	if ((rc = kt_note_vkey_init(
		 (const char *)name.p, name.len, raw[0], raw + 1, &k)) != KT_OK)
		return rc == KT_EINVAL ? KT_EPARSE : rc;
	if (k.id != id)
		return KT_EPARSE;
	*out = k;
	return KT_OK;
}

int
kt_note_vkey_format(const struct kt_note_vkey *k, struct kt_buf *out)
{
	uint8_t raw[NOTE_KEYLEN];
	char hex[9];
	uint8_t idb[4];
	size_t old = out->len;
	uint32_t id;
	int rc;

	if (k->namelen > KT_NOTE_NAME_MAX || !note_type_ok(k->type) ||
	    kt_note_name_check((const uint8_t *)k->name, k->namelen) != KT_OK)
		return KT_EINVAL;
	if ((rc = kt_note_key_id(k->name, k->namelen, k->type, k->pub, &id)) !=
	    KT_OK)
		return rc;
	if (id != k->id)
		return KT_EINVAL;
	kt_put_u32be(idb, k->id);
	kt_hex_encode(idb, sizeof(idb), hex);
	raw[0] = k->type;
	memcpy(raw + 1, k->pub, KT_ED25519_PUB_SIZE);
	if ((rc = kt_buf_append(out, k->name, k->namelen)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '+')) != KT_OK ||
	    (rc = kt_buf_append(out, hex, 8)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '+')) != KT_OK ||
	    (rc = kt_b64_append(out, raw, sizeof(raw))) != KT_OK) {
		kt_buf_truncate(out, old);
		return rc;
	}
	return KT_OK;
}

int
kt_note_skey_parse(const char *s, size_t len, struct kt_note_vkey *vkey,
    uint8_t seed[KT_ED25519_SEED_SIZE])
{
	size_t plen = sizeof(note_skey_prefix) - 1;
	struct kt_note_ed25519 *key = NULL;
	uint8_t raw[NOTE_KEYLEN];
	uint8_t pub[KT_ED25519_PUB_SIZE];
	struct kt_bytes name, rest;
	struct kt_note_vkey k;
	uint32_t id;
	int rc;

	memset(raw, 0, sizeof(raw));
	if (len < plen || memcmp(s, note_skey_prefix, plen) != 0) {
		rc = KT_EPARSE;
		goto out;
	}
	if ((rc = note_split_key(s + plen, len - plen, &name, &id, &rest)) !=
	    KT_OK)
		goto out;
	if (kt_b64_decode_exact(
		(const char *)rest.p, rest.len, raw, sizeof(raw)) != KT_OK ||
	    !note_type_ok(raw[0])) {
		rc = KT_EPARSE;
		goto out;
	}
	if ((rc = kt_note_ed25519_new(raw + 1, &key)) != KT_OK)
		goto out;
	kt_note_ed25519_public(key, pub);
	if ((rc = kt_note_vkey_init(
		 (const char *)name.p, name.len, raw[0], pub, &k)) != KT_OK) {
		if (rc == KT_EINVAL)
			rc = KT_EPARSE;
		goto out;
	}
	if (k.id != id) {
		rc = KT_EPARSE;
		goto out;
	}
	*vkey = k;
	memcpy(seed, raw + 1, KT_ED25519_SEED_SIZE);
	rc = KT_OK;
out:
	kt_note_ed25519_free(key);
	kt_wipe(raw, sizeof(raw));
	return rc;
}

/*
 * Parses one signature line (without its newline): em dash, space, key
 * name, one space, canonical base64 of the key ID and at least one byte
 * of signature.
 */
static int
note_parse_sig(struct kt_bytes line, struct kt_note_sig *sig)
{
	uint8_t raw[KT_NOTE_SIGLEN_MAX];
	const uint8_t *p, *sp;
	size_t n, rawlen;
	int rc;

	if (line.len < sizeof(note_sig_prefix) ||
	    memcmp(line.p, note_sig_prefix, sizeof(note_sig_prefix)) != 0)
		return KT_EPARSE;
	p = line.p + sizeof(note_sig_prefix);
	n = line.len - sizeof(note_sig_prefix);
	if ((sp = memchr(p, ' ', n)) == NULL)
		return KT_EPARSE;
	sig->name.p = p;
	sig->name.len = (size_t)(sp - p);
	sig->b64.p = sp + 1;
	sig->b64.len = n - sig->name.len - 1;
	if (kt_note_name_check(sig->name.p, sig->name.len) != KT_OK)
		return KT_EPARSE;
	rc = kt_b64_decode(
	    (const char *)sig->b64.p, sig->b64.len, raw, sizeof(raw), &rawlen);
	if (rc != KT_OK)
		return rc;
	if (rawlen <= 4)
		return KT_EPARSE;
	sig->id = kt_get_u32be(raw);
	return KT_OK;
}

int
kt_note_parse(const uint8_t *msg, size_t len, struct kt_note *out)
{
	struct kt_note n;
	struct kt_reader r;
	size_t split;
	int rc;

	if (len > KT_NOTE_MAX)
		return KT_ETOOBIG;
	if (kt_note_text_check(msg, len) != KT_OK)
		return KT_EPARSE;
	/* The text ends at the last blank line (C2SP signed-note). */
	for (split = len; split >= 2; split--) {
		if (msg[split - 2] == '\n' && msg[split - 1] == '\n')
			break;
	}
	if (split < 2)
		return KT_EPARSE;
	/* split is just past the blank line; the text keeps its newline. */
	n.text.p = msg;
	n.text.len = split - 1;
	n.nsigs = 0;
	if (split == len)
		return KT_EPARSE;
	kt_reader_init(&r, msg + split, len - split);
	while (kt_reader_left(&r) > 0) {
		struct kt_bytes line = kt_reader_line(&r);

		if (r.bad)
			return KT_EPARSE;
		if (n.nsigs == KT_NOTE_SIGS_MAX)
			return KT_ETOOBIG;
		if ((rc = note_parse_sig(line, &n.sigs[n.nsigs])) != KT_OK)
			return rc;
		n.nsigs++;
	}
	*out = n;
	return KT_OK;
}

int
kt_note_format(const struct kt_note *n, struct kt_buf *out)
{
	size_t old = out->len;
	int rc;

	if (n->nsigs == 0 || n->nsigs > KT_NOTE_SIGS_MAX)
		return KT_EINVAL;
	if ((rc = kt_buf_append(out, n->text.p, n->text.len)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '\n')) != KT_OK)
		goto out;
	for (size_t i = 0; i < n->nsigs; i++) {
		const struct kt_note_sig *s = &n->sigs[i];

		if ((rc = kt_buf_append(out, note_sig_prefix,
			 sizeof(note_sig_prefix))) != KT_OK ||
		    (rc = kt_buf_append(out, s->name.p, s->name.len)) !=
			KT_OK ||
		    (rc = kt_buf_append_byte(out, ' ')) != KT_OK ||
		    (rc = kt_buf_append(out, s->b64.p, s->b64.len)) != KT_OK ||
		    (rc = kt_buf_append_byte(out, '\n')) != KT_OK)
			goto out;
	}
	rc = KT_OK;
out:
	if (rc != KT_OK)
		kt_buf_truncate(out, old);
	return rc;
}

/*
 * Verifies an Ed25519 signature (RFC 8032) of msg[0..len) by pub.
 * Returns KT_OK, KT_EVERIFY, KT_ENOMEM or KT_EINTERNAL.
 */
static int
note_ed25519_verify(const uint8_t pub[KT_ED25519_PUB_SIZE], const uint8_t *msg,
    size_t len, const uint8_t sig[KT_ED25519_SIG_SIZE])
{
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	int rc;

	pkey = EVP_PKEY_new_raw_public_key(
	    EVP_PKEY_ED25519, NULL, pub, KT_ED25519_PUB_SIZE);
	if (pkey == NULL) {
		rc = KT_EINTERNAL;
		goto out;
	}
	if ((md = EVP_MD_CTX_new()) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) != 1) {
		rc = KT_EINTERNAL;
		goto out;
	}
	if (EVP_DigestVerify(md, sig, KT_ED25519_SIG_SIZE, msg, len) != 1) {
		rc = KT_EVERIFY;
		goto out;
	}
	rc = KT_OK;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	return rc;
}

/*
 * The check of a signature just made (kt_note_sign_line).  A signer signs
 * with one key again and again (a log, each checkpoint), so the verifier
 * table (edverify.h) of the last key is kept, and a check costs about a
 * third of OpenSSL's.  A key that gets no table is checked by OpenSSL.
 */
static pthread_mutex_t note_signed_mu = PTHREAD_MUTEX_INITIALIZER;
static struct edv *note_signed_edv;
static uint8_t note_signed_pub[KT_ED25519_PUB_SIZE];

static int
note_signed_check(const uint8_t pub[KT_ED25519_PUB_SIZE], const uint8_t *msg,
    size_t len, const uint8_t sig[KT_ED25519_SIG_SIZE])
{
	struct edv *v = NULL, *old = NULL;
	int rc;

	pthread_mutex_lock(&note_signed_mu);
	if (note_signed_edv != NULL &&
	    memcmp(note_signed_pub, pub, KT_ED25519_PUB_SIZE) == 0)
		v = edv_ref(note_signed_edv);
	pthread_mutex_unlock(&note_signed_mu);
	if (v == NULL) {
		if ((rc = edv_new(pub, &v)) == KT_EINVAL)
			return note_ed25519_verify(pub, msg, len, sig);
		if (rc != KT_OK)
			return rc;
		pthread_mutex_lock(&note_signed_mu);
		old = note_signed_edv;
		note_signed_edv = edv_ref(v);
		memcpy(note_signed_pub, pub, KT_ED25519_PUB_SIZE);
		pthread_mutex_unlock(&note_signed_mu);
		edv_free(old);
	}
	rc = edv_verify(v, msg, len, sig, KT_ED25519_SIG_SIZE);
	edv_free(v);
	return rc == 1 ? KT_OK : rc == 0 ? KT_EVERIFY : KT_ENOMEM;
}

/*
 * Builds the cosignature/v1 signed message for text and timestamp t into
 * m (C2SP tlog-cosignature, "Ed25519 signed message").
 */
static int
note_cosig_message(
    const uint8_t *text, size_t len, uint64_t t, struct kt_buf *m)
{
	int rc;

	if ((rc = kt_buf_append_str(m, note_cosig_header)) != KT_OK ||
	    (rc = kt_buf_append_u64(m, t)) != KT_OK ||
	    (rc = kt_buf_append_byte(m, '\n')) != KT_OK ||
	    (rc = kt_buf_append(m, text, len)) != KT_OK)
		return rc;
	return KT_OK;
}

/* Room for the cosignature/v1 header lines in front of a text. */
#define NOTE_COSIG_HEADER_MAX (sizeof(note_cosig_header) + 20 + 1)

/*
 * Verifies signature line s over text with key k (whose name and key ID
 * match s).  Stores the cosignature time in *t (0 for type 0x01).
 */
static int
note_sig_verify(struct kt_bytes text, const struct kt_note_sig *s,
    const struct kt_note_vkey *k, uint64_t *t)
{
	uint8_t raw[NOTE_COSIG_SIGLEN];
	struct kt_buf m;
	size_t rawlen;
	int rc;

	kt_buf_init(&m, NOTE_COSIG_HEADER_MAX + text.len);
	/* A line of a known key that does not even decode fails it. */
	if (kt_b64_decode((const char *)s->b64.p, s->b64.len, raw, sizeof(raw),
		&rawlen) != KT_OK) {
		rc = KT_EVERIFY;
		goto out;
	}
	if (k->type == KT_NOTE_ED25519) {
		if (rawlen != NOTE_ED25519_SIGLEN) {
			rc = KT_EVERIFY;
			goto out;
		}
		rc = note_ed25519_verify(k->pub, text.p, text.len, raw + 4);
		*t = 0;
		goto out;
	}
	if (k->type != KT_NOTE_COSIG_V1 || rawlen != NOTE_COSIG_SIGLEN ||
	    kt_get_u64be(raw + 4) > KT_COSIG_TIME_MAX) {
		rc = KT_EVERIFY;
		goto out;
	}
	*t = kt_get_u64be(raw + 4);
	if ((rc = note_cosig_message(text.p, text.len, *t, &m)) != KT_OK)
		goto out;
	rc = note_ed25519_verify(k->pub, m.p, m.len, raw + 12);
out:
	kt_buf_free(&m);
	return rc;
}

/* Whether line s names key k: same key name and same key ID. */
static int
note_sig_matches(const struct kt_note_sig *s, const struct kt_note_vkey *k)
{
	return s->id == k->id && s->name.len == k->namelen &&
	    memcmp(s->name.p, k->name, k->namelen) == 0;
}

int
kt_note_check(const struct kt_note *n, const struct kt_note_vkey *keys,
    size_t nkeys, struct kt_note_keyresult *results, size_t *nverified)
{
	struct kt_note_keyresult *res = NULL;
	size_t count = 0;
	int rc;

	/* A note not made by kt_note_parse() gets the same text checks. */
	if (n->nsigs > KT_NOTE_SIGS_MAX || n->text.len == 0 ||
	    n->text.p[n->text.len - 1] != '\n' ||
	    kt_note_text_check(n->text.p, n->text.len) != KT_OK)
		return KT_EINVAL;
	if (nkeys > 0 && (res = calloc(nkeys, sizeof(*res))) == NULL)
		return KT_ENOMEM;
	for (size_t i = 0; i < n->nsigs; i++) {
		for (size_t k = 0; k < nkeys; k++) {
			uint64_t t;

			if (!note_sig_matches(&n->sigs[i], &keys[k]))
				continue;
			rc =
			    note_sig_verify(n->text, &n->sigs[i], &keys[k], &t);
			if (rc != KT_OK)
				goto out;
			if (!res[k].verified || t > res[k].timestamp)
				res[k].timestamp = t;
			res[k].verified = 1;
		}
	}
	for (size_t k = 0; k < nkeys; k++)
		count += (size_t)res[k].verified;
	if (results != NULL && nkeys > 0)
		memcpy(results, res, nkeys * sizeof(*res));
	*nverified = count;
	rc = KT_OK;
out:
	free(res);
	return rc;
}

int
kt_note_verify(const struct kt_note *n, const struct kt_note_vkey *keys,
    size_t nkeys, struct kt_note_keyresult *results)
{
	struct kt_note_keyresult *res = NULL;
	size_t count = 0;
	int rc;

	if (nkeys > 0 && (res = calloc(nkeys, sizeof(*res))) == NULL)
		return KT_ENOMEM;
	if ((rc = kt_note_check(n, keys, nkeys, res, &count)) != KT_OK)
		goto out;
	/* "If no signature from a known key verifies, clients MUST reject." */
	if (count == 0) {
		rc = KT_EVERIFY;
		goto out;
	}
	if (results != NULL && nkeys > 0)
		memcpy(results, res, nkeys * sizeof(*res));
	rc = KT_OK;
out:
	free(res);
	return rc;
}

int
kt_note_open(const uint8_t *msg, size_t len, const struct kt_note_vkey *keys,
    size_t nkeys, struct kt_note_keyresult *results, struct kt_note *out)
{
	struct kt_note *n;
	int rc;

	/* struct kt_note is a few kilobytes: keep it off the stack. */
	if ((n = malloc(sizeof(*n))) == NULL)
		return KT_ENOMEM;
	if ((rc = kt_note_parse(msg, len, n)) != KT_OK)
		goto out;
	if ((rc = kt_note_verify(n, keys, nkeys, results)) != KT_OK)
		goto out;
	if (out != NULL)
		*out = *n;
	rc = KT_OK;
out:
	free(n);
	return rc;
}

int
kt_note_sign_line(const uint8_t *text, size_t len,
    const struct kt_note_signer *s, uint64_t timestamp, struct kt_buf *out)
{
	uint8_t raw[NOTE_COSIG_SIGLEN];
	const struct kt_note_vkey *k = &s->key;
	size_t old = out->len, rawlen;
	struct kt_buf m;
	uint32_t id;
	int rc;

	kt_buf_init(&m, NOTE_COSIG_HEADER_MAX + len);
	if (s->sign == NULL || len == 0 || len > KT_NOTE_MAX ||
	    text[len - 1] != '\n' || kt_note_text_check(text, len) != KT_OK ||
	    k->namelen > KT_NOTE_NAME_MAX || !note_type_ok(k->type) ||
	    kt_note_name_check((const uint8_t *)k->name, k->namelen) != KT_OK) {
		rc = KT_EINVAL;
		goto out;
	}
	if ((rc = kt_note_key_id(k->name, k->namelen, k->type, k->pub, &id)) !=
	    KT_OK)
		goto out;
	if (id != k->id || (k->type == KT_NOTE_ED25519 && timestamp != 0) ||
	    timestamp > KT_COSIG_TIME_MAX) {
		rc = KT_EINVAL;
		goto out;
	}
	kt_put_u32be(raw, k->id);
	if (k->type == KT_NOTE_ED25519) {
		rawlen = NOTE_ED25519_SIGLEN;
		if ((rc = s->sign(s->ctx, text, len, raw + 4)) != KT_OK)
			goto out;
		rc = note_signed_check(k->pub, text, len, raw + 4);
	} else {
		rawlen = NOTE_COSIG_SIGLEN;
		kt_put_u64be(raw + 4, timestamp);
		if ((rc = note_cosig_message(text, len, timestamp, &m)) !=
		    KT_OK)
			goto out;
		if ((rc = s->sign(s->ctx, m.p, m.len, raw + 12)) != KT_OK)
			goto out;
		rc = note_signed_check(k->pub, m.p, m.len, raw + 12);
	}
	if (rc != KT_OK)
		goto out;
	if ((rc = kt_buf_append(
		 out, note_sig_prefix, sizeof(note_sig_prefix))) != KT_OK ||
	    (rc = kt_buf_append(out, k->name, k->namelen)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, ' ')) != KT_OK ||
	    (rc = kt_b64_append(out, raw, rawlen)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '\n')) != KT_OK)
		goto out;
	rc = KT_OK;
out:
	/* A callback that breaks the contract must not look like success. */
	if (rc > 0)
		rc = KT_EINTERNAL;
	if (rc != KT_OK)
		kt_buf_truncate(out, old);
	kt_buf_free(&m);
	return rc;
}

int
kt_note_sign(const uint8_t *text, size_t len,
    const struct kt_note_signer *signers, size_t nsigners, uint64_t timestamp,
    struct kt_buf *out)
{
	size_t old = out->len;
	int rc;

	if (nsigners == 0 || nsigners > KT_NOTE_SIGS_MAX)
		return KT_EINVAL;
	if ((rc = kt_buf_append(out, text, len)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '\n')) != KT_OK)
		goto out;
	for (size_t i = 0; i < nsigners; i++) {
		rc = kt_note_sign_line(text, len, &signers[i],
		    signers[i].key.type == KT_NOTE_COSIG_V1 ? timestamp : 0,
		    out);
		if (rc != KT_OK)
			goto out;
	}
	if (out->len - old > KT_NOTE_MAX) {
		rc = KT_ETOOBIG;
		goto out;
	}
	rc = KT_OK;
out:
	if (rc != KT_OK)
		kt_buf_truncate(out, old);
	return rc;
}

int
kt_note_ed25519_new(
    const uint8_t seed[KT_ED25519_SEED_SIZE], struct kt_note_ed25519 **out)
{
	struct kt_note_ed25519 *k;
	size_t publen = KT_ED25519_PUB_SIZE;
	int rc;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return KT_ENOMEM;
	k->pkey = EVP_PKEY_new_raw_private_key(
	    EVP_PKEY_ED25519, NULL, seed, KT_ED25519_SEED_SIZE);
	if (k->pkey == NULL) {
		rc = KT_EINTERNAL;
		goto out;
	}
	if (EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &publen) != 1 ||
	    publen != KT_ED25519_PUB_SIZE) {
		rc = KT_EINTERNAL;
		goto out;
	}
	*out = k;
	k = NULL;
	rc = KT_OK;
out:
	kt_note_ed25519_free(k);
	return rc;
}

void
kt_note_ed25519_free(struct kt_note_ed25519 *k)
{
	if (k == NULL)
		return;
	/* OpenSSL clears the private key of an Ed25519 EVP_PKEY on free. */
	EVP_PKEY_free(k->pkey);
	kt_wipe(k, sizeof(*k));
	free(k);
}

void
kt_note_ed25519_public(
    const struct kt_note_ed25519 *k, uint8_t pub[KT_ED25519_PUB_SIZE])
{
	memcpy(pub, k->pub, KT_ED25519_PUB_SIZE);
}

int
kt_note_ed25519_sign(
    void *ctx, const uint8_t *msg, size_t len, uint8_t sig[KT_ED25519_SIG_SIZE])
{
	struct kt_note_ed25519 *k = ctx;
	uint8_t tmp[KT_ED25519_SIG_SIZE];
	size_t siglen = sizeof(tmp);
	EVP_MD_CTX *md;
	int rc;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return KT_ENOMEM;
	if (EVP_DigestSignInit(md, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(md, tmp, &siglen, msg, len) != 1 ||
	    siglen != KT_ED25519_SIG_SIZE) {
		rc = KT_EINTERNAL;
		goto out;
	}
	memcpy(sig, tmp, KT_ED25519_SIG_SIZE);
	rc = KT_OK;
out:
	EVP_MD_CTX_free(md);
	return rc;
}
