/*
 * The HSM through raw PKCS#11 (OASIS PKCS#11 Base Specification v2.40 and
 * Current Mechanisms v3.0 for CKM_EDDSA).  See hsm.h for the contract.
 *
 * Shape.  A process-wide list of loaded modules (PKCS#11 state is global
 * to the process: C_Initialize once, C_Finalize once); per handle a token
 * slot, the user PIN, and a pool of read-write sessions guarded by one
 * mutex.  PKCS#11 logins belong to the application, not the session, so
 * one C_Login covers every session of the pool, and sessions opened later
 * start logged in.
 *
 * Recovery.  A session the token calls invalid or closed is forgotten,
 * never closed: the token has freed it and may already have handed the
 * same number to another thread.  After such an error (or a lost login)
 * the pool is checked session by session, the token is looked up again by
 * label, the user logs in again, and the generation counter moves on so
 * that every key looks its object handle up once more: the PKCS#11 v2.40
 * base specification only promises that a handle stays valid while the
 * session that saw it lives.
 *
 * Files.  This one owns the module, the PIN, the login, the session pool,
 * signing and the setup of development tokens; hsm_key.c owns the keys
 * in the token; hsm_int.h holds what the two share.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "keytrail/encoding.h"
#include "ecverify.h"
#include "edverify.h"
#include "hsm.h"
#include "hsm_int.h"

/* Most slots we look at, and most objects a lookup may report. */
#define HSM_SLOTS_MAX 256
/* Random PINs made by hsm_softhsm_setup(): this many bytes, hex-encoded. */
#define HSM_SETUP_PIN_BYTES 16
/* RSA-PSS salt length: the SHA-256 output size (RFC 8017 section 9.1). */
#define HSM_PSS_SALT 32

/* The SHA-256 digest length that ECDSA and RSA-PSS sign. */
#define HSM_DIGEST_LEN 32

static const struct {
	enum hsm_alg alg;
	const char *name;
	size_t sigmax; /* as returned by hsm_sign() */
	size_t rawmax; /* as returned by the token */
} hsm_algs[] = {
	{ HSM_ED25519, "ed25519", 64, 64 },
	/* DER: 2 + 2 * (2 + 1 + 32) for P-256, 3 + 2 * (2 + 1 + 48). */
	{ HSM_ECDSA_P256, "ecdsa-p256-sha256", 72, 64 },
	{ HSM_ECDSA_P384, "ecdsa-p384-sha256", 104, 96 },
	{ HSM_RSA3072_PSS, "rsa3072-pss-sha256", 384, 384 },
	{ HSM_RSA4096_PSS, "rsa4096-pss-sha256", 512, 512 },
};
#define HSM_NALGS (sizeof(hsm_algs) / sizeof(hsm_algs[0]))

/*
 * A loaded PKCS#11 module, shared by every handle using the same path.
 * All fields are guarded by hsm_modules_mu.
 */
struct hsm_module {
	struct hsm_module *next;
	char *path;
	char *conf; /* SOFTHSM2_CONF it was initialised with, or NULL */
	void *dl;
	struct ck_function_list *f;
	unsigned refs;	    /* users; initialised while > 0 */
	int finalize;	    /* we initialised it, so we finalise it */
	struct hsm *opened; /* handles using it, linked by mod_next */
};

static pthread_mutex_t hsm_modules_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hsm_module *hsm_modules;

static void hsm_msg(struct hsm_op *op, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void
hsm_op_init(struct hsm_op *op, char *err, size_t errlen)
{
	op->err = err;
	op->errlen = errlen;
	op->rv = CKR_OK;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

static void hsm_vmsg(struct hsm_op *op, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
hsm_vmsg(struct hsm_op *op, const char *fmt, va_list ap)
{
	/* Truncation is fine: the message is for people. */
	if (op->err != NULL && op->errlen > 0)
		(void)vsnprintf(op->err, op->errlen, fmt, ap);
}

static void
hsm_msg(struct hsm_op *op, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hsm_vmsg(op, fmt, ap);
	va_end(ap);
}

/* Records a failure that is not the token's and returns code. */
int
hsm_error(struct hsm_op *op, int code, const char *fmt, ...)
{
	va_list ap;

	op->rv = CKR_OK;
	va_start(ap, fmt);
	hsm_vmsg(op, fmt, ap);
	va_end(ap);
	return code;
}

#define HSM_RV(x) \
	{ \
		x, #x \
	}
static const struct {
	ck_rv_t rv;
	const char *name;
} hsm_rv_names[] = {
	HSM_RV(CKR_OK),
	HSM_RV(CKR_HOST_MEMORY),
	HSM_RV(CKR_SLOT_ID_INVALID),
	HSM_RV(CKR_GENERAL_ERROR),
	HSM_RV(CKR_FUNCTION_FAILED),
	HSM_RV(CKR_ARGUMENTS_BAD),
	HSM_RV(CKR_CANT_LOCK),
	HSM_RV(CKR_ATTRIBUTE_READ_ONLY),
	HSM_RV(CKR_ATTRIBUTE_SENSITIVE),
	HSM_RV(CKR_ATTRIBUTE_TYPE_INVALID),
	HSM_RV(CKR_ATTRIBUTE_VALUE_INVALID),
	HSM_RV(CKR_DATA_INVALID),
	HSM_RV(CKR_DATA_LEN_RANGE),
	HSM_RV(CKR_DEVICE_ERROR),
	HSM_RV(CKR_DEVICE_MEMORY),
	HSM_RV(CKR_DEVICE_REMOVED),
	HSM_RV(CKR_FUNCTION_NOT_SUPPORTED),
	HSM_RV(CKR_KEY_HANDLE_INVALID),
	HSM_RV(CKR_KEY_SIZE_RANGE),
	HSM_RV(CKR_KEY_TYPE_INCONSISTENT),
	HSM_RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
	HSM_RV(CKR_MECHANISM_INVALID),
	HSM_RV(CKR_MECHANISM_PARAM_INVALID),
	HSM_RV(CKR_OBJECT_HANDLE_INVALID),
	HSM_RV(CKR_OPERATION_ACTIVE),
	HSM_RV(CKR_OPERATION_NOT_INITIALIZED),
	HSM_RV(CKR_PIN_INCORRECT),
	HSM_RV(CKR_PIN_INVALID),
	HSM_RV(CKR_PIN_LEN_RANGE),
	HSM_RV(CKR_PIN_EXPIRED),
	HSM_RV(CKR_PIN_LOCKED),
	HSM_RV(CKR_SESSION_CLOSED),
	HSM_RV(CKR_SESSION_COUNT),
	HSM_RV(CKR_SESSION_HANDLE_INVALID),
	HSM_RV(CKR_SESSION_READ_ONLY),
	HSM_RV(CKR_TEMPLATE_INCOMPLETE),
	HSM_RV(CKR_TEMPLATE_INCONSISTENT),
	HSM_RV(CKR_TOKEN_NOT_PRESENT),
	HSM_RV(CKR_TOKEN_NOT_RECOGNIZED),
	HSM_RV(CKR_TOKEN_WRITE_PROTECTED),
	HSM_RV(CKR_USER_ALREADY_LOGGED_IN),
	HSM_RV(CKR_USER_NOT_LOGGED_IN),
	HSM_RV(CKR_USER_PIN_NOT_INITIALIZED),
	HSM_RV(CKR_USER_TYPE_INVALID),
	HSM_RV(CKR_BUFFER_TOO_SMALL),
	HSM_RV(CKR_CRYPTOKI_NOT_INITIALIZED),
	HSM_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
};
#undef HSM_RV

static const char *
hsm_rv_name(ck_rv_t rv)
{
	for (size_t i = 0; i < sizeof(hsm_rv_names) / sizeof(hsm_rv_names[0]);
	     i++)
		if (hsm_rv_names[i].rv == rv)
			return hsm_rv_names[i].name;
	return NULL;
}

/* The KT_* code for a failed PKCS#11 call. */
static int
hsm_rv_code(ck_rv_t rv)
{
	switch (rv) {
	case CKR_HOST_MEMORY:
		return KT_ENOMEM;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
	case CKR_USER_PIN_NOT_INITIALIZED:
		return KT_EAUTH;
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_SESSION_COUNT:
		return KT_EUNAVAIL;
	default:
		return KT_EIO;
	}
}

/* Records a failed PKCS#11 call and returns its KT_* code. */
int
hsm_fail(struct hsm_op *op, ck_rv_t rv, const char *fmt, ...)
{
	char what[HSM_ERR_SIZE];
	const char *name = hsm_rv_name(rv);
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	op->rv = rv;
	if (name != NULL)
		hsm_msg(op, "%s: %s", what, name);
	else
		hsm_msg(op, "%s: PKCS#11 error 0x%lx", what, (unsigned long)rv);
	return hsm_rv_code(rv);
}

/* The token no longer knows the session. */
static int
hsm_rv_session_dead(ck_rv_t rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	    rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT;
}

/* Rebuilding the pool and logging in again may cure the failure. */
int
hsm_rv_reconnect(ck_rv_t rv)
{
	return hsm_rv_session_dead(rv) || rv == CKR_USER_NOT_LOGGED_IN;
}

/* The object handle went stale; looking the key up again may cure it. */
static int
hsm_rv_stale_key(ck_rv_t rv)
{
	return rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID;
}

void
hsm_lock(pthread_mutex_t *mu)
{
	HSM_ASSERT(pthread_mutex_lock(mu) == 0);
}

void
hsm_unlock(pthread_mutex_t *mu)
{
	HSM_ASSERT(pthread_mutex_unlock(mu) == 0);
}

const char *
hsm_alg_name(enum hsm_alg alg)
{
	for (size_t i = 0; i < HSM_NALGS; i++)
		if (hsm_algs[i].alg == alg)
			return hsm_algs[i].name;
	return NULL;
}

int
hsm_alg_parse(const char *name, enum hsm_alg *out)
{
	if (name == NULL)
		return KT_EPARSE;
	for (size_t i = 0; i < HSM_NALGS; i++)
		if (strcmp(hsm_algs[i].name, name) == 0) {
			*out = hsm_algs[i].alg;
			return KT_OK;
		}
	return KT_EPARSE;
}

size_t
hsm_sig_max(enum hsm_alg alg)
{
	for (size_t i = 0; i < HSM_NALGS; i++)
		if (hsm_algs[i].alg == alg)
			return hsm_algs[i].sigmax;
	return 0;
}

static size_t
hsm_sig_rawmax(enum hsm_alg alg)
{
	for (size_t i = 0; i < HSM_NALGS; i++)
		if (hsm_algs[i].alg == alg)
			return hsm_algs[i].rawmax;
	return 0;
}

/*
 * A label we are willing to put in a template or a message: 1 to max
 * bytes, no control characters (they would garble logs).
 */
int
hsm_label_ok(const char *label, size_t max)
{
	size_t n;

	if (label == NULL)
		return 0;
	n = strnlen(label, max + 1);
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)label[i];

		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/* A token label as CK_TOKEN_INFO holds it: space-padded, no NUL. */
static void
hsm_token_label_pad(const char *label, unsigned char out[32])
{
	size_t n = strlen(label);

	HSM_ASSERT(n <= 32);
	memset(out, ' ', 32);
	memcpy(out, label, n);
}

/*
 * Finds the module loaded from path, or loads it.  Modules stay loaded for
 * the life of the process: a module may leave thread-specific data
 * destructors or exit handlers pointing into its code, so unloading it is
 * not safe.  Called with hsm_modules_mu held.
 */
static int
hsm_module_load(const char *path, struct hsm_module **out, struct hsm_op *op)
{
	struct hsm_module *m;
	CK_C_GetFunctionList getlist;
	ck_rv_t rv;
	int rc;

	for (m = hsm_modules; m != NULL; m = m->next)
		if (strcmp(m->path, path) == 0) {
			*out = m;
			return KT_OK;
		}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->path = strdup(path)) == NULL) {
		rc = hsm_error(op, KT_ENOMEM, "out of memory");
		goto fail;
	}
	if ((m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		const char *why = dlerror();

		rc = hsm_error(op, KT_ENOTFOUND,
		    "cannot load PKCS#11 module %s: %s", path,
		    why != NULL ? why : "unknown reason");
		goto fail;
	}
	getlist = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
	if (getlist == NULL) {
		rc = hsm_error(op, KT_EIO,
		    "%s is not a PKCS#11 module (no C_GetFunctionList)", path);
		goto fail;
	}
	if ((rv = getlist(&m->f)) != CKR_OK || m->f == NULL) {
		rc = hsm_fail(op, rv != CKR_OK ? rv : CKR_GENERAL_ERROR,
		    "C_GetFunctionList of %s", path);
		goto fail;
	}
	m->next = hsm_modules;
	hsm_modules = m;
	*out = m;
	return KT_OK;
fail:
	if (m != NULL) {
		if (m->dl != NULL)
			(void)dlclose(m->dl);
		free(m->path);
		free(m);
	}
	return rc;
}

/*
 * Takes a reference to the module at path, initialising it for the first
 * user.  conf, when not NULL, is put in SOFTHSM2_CONF for C_Initialize,
 * which is when SoftHSM reads it; the environment is restored afterwards.
 */
static int
hsm_module_acquire(const char *path, const char *conf, struct hsm_module **out,
    struct hsm_op *op)
{
	struct ck_c_initialize_args args;
	struct hsm_module *m = NULL;
	char *oldconf = NULL;
	int rc, hadconf = 0;
	ck_rv_t rv;

	hsm_lock(&hsm_modules_mu);
	if ((rc = hsm_module_load(path, &m, op)) != KT_OK)
		goto out;
	if (m->refs > 0) {
		if (conf != NULL &&
		    (m->conf == NULL || strcmp(m->conf, conf) != 0)) {
			rc = hsm_error(op, KT_EINVAL,
			    "PKCS#11 module %s is already in use in this "
			    "process with SOFTHSM2_CONF=%s",
			    path, m->conf != NULL ? m->conf : "(unset)");
			goto out;
		}
		m->refs++;
		*out = m;
		goto out;
	}

	free(m->conf);
	m->conf = NULL;
	if (conf != NULL) {
		const char *old = getenv("SOFTHSM2_CONF");

		if ((m->conf = strdup(conf)) == NULL ||
		    (old != NULL && (oldconf = strdup(old)) == NULL)) {
			rc = hsm_error(op, KT_ENOMEM, "out of memory");
			goto out;
		}
		hadconf = old != NULL;
		if (setenv("SOFTHSM2_CONF", conf, 1) != 0) {
			rc = hsm_error(
			    op, KT_ENOMEM, "cannot set SOFTHSM2_CONF");
			goto out;
		}
	}
	/* Sessions are shared between threads: let the module lock. */
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = m->f->C_Initialize(&args);
	if (conf != NULL) {
		if (hadconf)
			(void)setenv("SOFTHSM2_CONF", oldconf, 1);
		else
			(void)unsetenv("SOFTHSM2_CONF");
	}
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED && conf == NULL) {
		/* Someone else in the process owns the module's state. */
		m->finalize = 0;
	} else if (rv != CKR_OK) {
		rc = hsm_fail(op, rv, "C_Initialize of %s", path);
		goto out;
	} else {
		m->finalize = 1;
	}
	m->refs = 1;
	*out = m;
out:
	free(oldconf);
	hsm_unlock(&hsm_modules_mu);
	return rc;
}

/* Drops a reference; the last one finalises the module. */
static void
hsm_module_release(struct hsm_module *m)
{
	if (m == NULL)
		return;
	hsm_lock(&hsm_modules_mu);
	HSM_ASSERT(m->refs > 0);
	if (--m->refs == 0 && m->finalize)
		(void)m->f->C_Finalize(NULL);
	hsm_unlock(&hsm_modules_mu);
}

/*
 * Registers h as the user of its token.  A second handle on the same
 * token would share the first one's login (PKCS#11 logins belong to the
 * application), so it would be let in whatever its PIN: refuse it.
 */
static int
hsm_module_attach(struct hsm *h, struct hsm_op *op)
{
	struct hsm *o;
	int rc = KT_OK;

	hsm_lock(&hsm_modules_mu);
	for (o = h->mod->opened; o != NULL; o = o->mod_next)
		if (strcmp(o->token_label, h->token_label) == 0)
			break;
	if (o != NULL) {
		rc = hsm_error(op, KT_EEXIST,
		    "token '%s' is already open in this process",
		    h->token_label);
	} else {
		h->mod_next = h->mod->opened;
		h->mod->opened = h;
	}
	hsm_unlock(&hsm_modules_mu);
	return rc;
}

static void
hsm_module_detach(struct hsm *h)
{
	struct hsm **pp;

	hsm_lock(&hsm_modules_mu);
	for (pp = &h->mod->opened; *pp != NULL; pp = &(*pp)->mod_next)
		if (*pp == h) {
			*pp = h->mod_next;
			break;
		}
	hsm_unlock(&hsm_modules_mu);
}

/*
 * Reads the PIN file: a regular file nobody but its owner may access,
 * holding the PIN and at most one line ending.
 */
static int
hsm_pin_read(const char *path, uint8_t *pin, size_t *pinlen, struct hsm_op *op)
{
	uint8_t buf[HSM_PIN_MAX + 3];
	struct stat st;
	size_t n = 0;
	int fd, rc = KT_OK;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return hsm_error(op, errno == ENOENT ? KT_ENOTFOUND : KT_EIO,
		    "cannot open PIN file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = hsm_error(op, KT_EIO, "cannot stat PIN file %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = hsm_error(
		    op, KT_EPOLICY, "PIN file %s is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		rc = hsm_error(op, KT_EPOLICY,
		    "PIN file %s has mode %04o: it must not be accessible "
		    "by group or others (chmod 600 %s)",
		    path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	while (n < sizeof(buf)) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc =
			    hsm_error(op, KT_EIO, "cannot read PIN file %s: %s",
				path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0 || n > HSM_PIN_MAX || memchr(buf, '\n', n) != NULL ||
	    memchr(buf, '\0', n) != NULL) {
		rc = hsm_error(op, KT_EPARSE,
		    "PIN file %s must hold one line of 1 to %d bytes", path,
		    HSM_PIN_MAX);
		goto out;
	}
	memcpy(pin, buf, n);
	*pinlen = n;
out:
	kt_wipe(buf, sizeof(buf));
	(void)close(fd);
	return rc;
}

/*
 * Lists the slots holding a token.  The list can change between the call
 * that counts and the call that fills, so try a few times.
 */
static int
hsm_slot_list(struct ck_function_list *f, ck_slot_id_t *slots,
    unsigned long *nslots, struct hsm_op *op)
{
	ck_rv_t rv = CKR_OK;

	for (int tries = 0; tries < 3; tries++) {
		unsigned long n = 0;

		if ((rv = f->C_GetSlotList(1, NULL, &n)) != CKR_OK)
			return hsm_fail(op, rv, "C_GetSlotList");
		if (n > HSM_SLOTS_MAX)
			return hsm_error(op, KT_ETOOBIG,
			    "the module reports %lu slots, more than %d", n,
			    HSM_SLOTS_MAX);
		rv = f->C_GetSlotList(1, slots, &n);
		if (rv == CKR_OK) {
			*nslots = n;
			return KT_OK;
		}
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
	}
	return hsm_fail(op, rv, "C_GetSlotList");
}

/* Finds the one initialised token labelled label. */
static int
hsm_slot_find(struct ck_function_list *f, const char *label, ck_slot_id_t *out,
    struct hsm_op *op)
{
	ck_slot_id_t slots[HSM_SLOTS_MAX], found = 0;
	unsigned char want[32];
	unsigned long n;
	unsigned matches = 0;
	int rc;

	if ((rc = hsm_slot_list(f, slots, &n, op)) != KT_OK)
		return rc;
	hsm_token_label_pad(label, want);
	for (unsigned long i = 0; i < n; i++) {
		struct ck_token_info ti;
		ck_rv_t rv = f->C_GetTokenInfo(slots[i], &ti);

		/* A token pulled out since the list was made is not ours. */
		if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED ||
		    rv == CKR_SLOT_ID_INVALID)
			continue;
		if (rv != CKR_OK)
			return hsm_fail(op, rv, "C_GetTokenInfo");
		if ((ti.flags & CKF_TOKEN_INITIALIZED) == 0 ||
		    memcmp(ti.label, want, sizeof(want)) != 0)
			continue;
		found = slots[i];
		matches++;
	}
	if (matches == 0)
		return hsm_error(
		    op, KT_ENOTFOUND, "no token labelled '%s'", label);
	if (matches > 1)
		return hsm_error(op, KT_EPOLICY,
		    "%u tokens are labelled '%s'; labels must be unique",
		    matches, label);
	*out = found;
	return KT_OK;
}

static int
hsm_login(struct hsm *h, ck_session_handle_t s, struct hsm_op *op)
{
	ck_rv_t rv = h->f->C_Login(s, CKU_USER, h->pin, h->pinlen);

	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return KT_OK;
	if (rv == CKR_PIN_INCORRECT)
		return hsm_fail(op, rv,
		    "token '%s' refused the PIN from the PIN file",
		    h->token_label);
	return hsm_fail(op, rv, "logging in to token '%s'", h->token_label);
}

/*
 * Opens a read-write session on slot and makes sure the user is logged
 * in: a login outlives sessions only while at least one stays open.
 */
static int
hsm_session_open(struct hsm *h, ck_slot_id_t slot, ck_session_handle_t *out,
    struct hsm_op *op)
{
	struct ck_session_info si;
	ck_session_handle_t s;
	ck_rv_t rv;
	int rc;

	rv = h->f->C_OpenSession(
	    slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK)
		return hsm_fail(
		    op, rv, "opening a session on token '%s'", h->token_label);
	if ((rv = h->f->C_GetSessionInfo(s, &si)) != CKR_OK) {
		(void)h->f->C_CloseSession(s);
		return hsm_fail(op, rv, "C_GetSessionInfo");
	}
	if (si.state != CKS_RW_USER_FUNCTIONS &&
	    (rc = hsm_login(h, s, op)) != KT_OK) {
		(void)h->f->C_CloseSession(s);
		return rc;
	}
	*out = s;
	return KT_OK;
}

/*
 * Borrows a logged-in session, opening one while the pool has room and
 * waiting otherwise.  Give it back with hsm_pool_put().
 */
int
hsm_pool_get(struct hsm *h, ck_session_handle_t *out, struct hsm_op *op)
{
	ck_slot_id_t slot;
	int rc;

	hsm_lock(&h->mu);
	while (h->nidle == 0 && h->nopen >= h->maxopen)
		HSM_ASSERT(pthread_cond_wait(&h->cv, &h->mu) == 0);
	if (h->nidle > 0) {
		*out = h->idle[--h->nidle];
		hsm_unlock(&h->mu);
		return KT_OK;
	}
	h->nopen++;
	slot = h->slot;
	hsm_unlock(&h->mu);

	if ((rc = hsm_session_open(h, slot, out, op)) != KT_OK) {
		hsm_lock(&h->mu);
		h->nopen--;
		HSM_ASSERT(pthread_cond_signal(&h->cv) == 0);
		hsm_unlock(&h->mu);
	}
	return rc;
}

/*
 * Gives back a borrowed session.  rv is the last result seen on it: a
 * session the token has dropped is forgotten, not closed (see the top of
 * this file).
 */
void
hsm_pool_put(struct hsm *h, ck_session_handle_t s, ck_rv_t rv)
{
	hsm_lock(&h->mu);
	HSM_ASSERT(h->nopen > h->nidle);
	if (hsm_rv_session_dead(rv)) {
		h->nopen--;
	} else {
		HSM_ASSERT(h->nidle < HSM_SESSIONS_MAX);
		h->idle[h->nidle++] = s;
	}
	HSM_ASSERT(pthread_cond_signal(&h->cv) == 0);
	hsm_unlock(&h->mu);
}

uint64_t
hsm_generation(struct hsm *h)
{
	uint64_t gen;

	hsm_lock(&h->mu);
	gen = h->gen;
	hsm_unlock(&h->mu);
	return gen;
}

/*
 * Rebuilds the pool after a failure that reported the session or the login
 * gone.  seen is the generation the failing call started in: if another
 * thread has reconnected since, there is nothing left to do.  The caller
 * holds no session.
 */
int
hsm_reconnect(struct hsm *h, uint64_t seen, struct hsm_op *op)
{
	ck_slot_id_t slot;
	unsigned keep = 0;
	int rc = KT_OK;

	hsm_lock(&h->mu);
	if (h->gen != seen)
		goto out;
	for (unsigned i = 0; i < h->nidle; i++) {
		struct ck_session_info si;

		if (h->f->C_GetSessionInfo(h->idle[i], &si) == CKR_OK)
			h->idle[keep++] = h->idle[i];
		else
			h->nopen--;
	}
	h->nidle = keep;

	/* A token that was pulled out may come back in another slot. */
	if ((rc = hsm_slot_find(h->f, h->token_label, &slot, op)) != KT_OK) {
		if (rc == KT_ENOTFOUND)
			rc = hsm_error(op, KT_EUNAVAIL,
			    "token '%s' has gone away", h->token_label);
		goto out;
	}
	if (slot != h->slot) {
		for (unsigned i = 0; i < h->nidle; i++)
			(void)h->f->C_CloseSession(h->idle[i]);
		h->nopen -= h->nidle;
		h->nidle = 0;
		h->slot = slot;
	}

	/*
	 * Log in on a session of the pool; sessions opened later inherit
	 * the login.  With every session borrowed, the borrowers' own
	 * failures bring them here, so there is nothing more to do.
	 */
	if (h->nidle > 0) {
		rc = hsm_login(h, h->idle[h->nidle - 1], op);
	} else if (h->nopen < h->maxopen) {
		ck_session_handle_t s;

		if ((rc = hsm_session_open(h, h->slot, &s, op)) == KT_OK) {
			h->idle[h->nidle++] = s;
			h->nopen++;
		}
	}
	if (rc != KT_OK)
		goto out;
	h->gen++;
	h->reconnects++;
	HSM_ASSERT(pthread_cond_broadcast(&h->cv) == 0);
out:
	hsm_unlock(&h->mu);
	return rc;
}

int
hsm_open(
    const struct hsm_config *cfg, struct hsm **out, char *err, size_t errlen)
{
	struct hsm_op op;
	struct hsm *h = NULL;
	const char *module;
	ck_session_handle_t s;
	int rc, mu = 0, genmu = 0, cv = 0, attached = 0;

	hsm_op_init(&op, err, errlen);
	if (cfg == NULL || out == NULL || cfg->pin_file == NULL)
		return hsm_error(&op, KT_EINVAL, "missing configuration");
	if (!hsm_label_ok(cfg->token_label, HSM_TOKEN_LABEL_MAX))
		return hsm_error(&op, KT_EINVAL,
		    "the token label must be 1 to %d printable bytes",
		    HSM_TOKEN_LABEL_MAX);
	if (cfg->max_sessions > HSM_SESSIONS_MAX)
		return hsm_error(
		    &op, KT_EINVAL, "at most %d sessions", HSM_SESSIONS_MAX);
	module = cfg->module != NULL ? cfg->module : HSM_DEFAULT_MODULE;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return hsm_error(&op, KT_ENOMEM, "out of memory");
	mu = pthread_mutex_init(&h->mu, NULL) == 0;
	genmu = pthread_mutex_init(&h->genmu, NULL) == 0;
	cv = pthread_cond_init(&h->cv, NULL) == 0;
	if (!mu || !genmu || !cv) {
		rc = hsm_error(&op, KT_ENOMEM, "cannot create a lock");
		goto fail;
	}
	(void)snprintf(
	    h->token_label, sizeof(h->token_label), "%s", cfg->token_label);
	h->maxopen =
	    cfg->max_sessions > 0 ? cfg->max_sessions : HSM_SESSIONS_DEFAULT;
	h->copies = cfg->session_copies != 0;
	h->fast_check = 1;
	if ((rc = hsm_pin_read(cfg->pin_file, h->pin, &h->pinlen, &op)) !=
	    KT_OK)
		goto fail;
	if ((rc = hsm_module_acquire(
		 module, cfg->softhsm_conf, &h->mod, &op)) != KT_OK)
		goto fail;
	h->f = h->mod->f;
	if ((rc = hsm_module_attach(h, &op)) != KT_OK)
		goto fail;
	attached = 1;
	if ((rc = hsm_slot_find(h->f, h->token_label, &h->slot, &op)) != KT_OK)
		goto fail;
	if ((rc = hsm_session_open(h, h->slot, &s, &op)) != KT_OK)
		goto fail;
	h->idle[h->nidle++] = s;
	h->nopen = 1;
	*out = h;
	return KT_OK;

fail:
	kt_wipe(h->pin, sizeof(h->pin));
	if (attached)
		hsm_module_detach(h);
	hsm_module_release(h->mod);
	if (cv)
		(void)pthread_cond_destroy(&h->cv);
	if (genmu)
		(void)pthread_mutex_destroy(&h->genmu);
	if (mu)
		(void)pthread_mutex_destroy(&h->mu);
	free(h);
	return rc;
}

void
hsm_close(struct hsm *h)
{
	if (h == NULL)
		return;
	/* Using h while closing it is a caller bug. */
	HSM_ASSERT(h->nidle == h->nopen);
	/*
	 * No C_Logout: the login belongs to the application and another
	 * handle may be using the same token.  It ends with the last
	 * session.
	 */
	for (unsigned i = 0; i < h->nidle; i++)
		(void)h->f->C_CloseSession(h->idle[i]);
	hsm_module_detach(h);
	hsm_module_release(h->mod);
	kt_wipe(h->pin, sizeof(h->pin));
	h->pinlen = 0;
	(void)pthread_cond_destroy(&h->cv);
	(void)pthread_mutex_destroy(&h->genmu);
	(void)pthread_mutex_destroy(&h->mu);
	free(h);
}

void
hsm_stats(struct hsm *h, struct hsm_stats *out)
{
	hsm_lock(&h->mu);
	out->sessions_open = h->nopen;
	out->sessions_max = h->maxopen;
	out->signs = h->signs;
	out->sign_failures = h->sign_failures;
	out->reconnects = h->reconnects;
	out->copies = h->ncopies;
	out->copies_refused = h->copies_refused;
	hsm_unlock(&h->mu);
}

void
hsm_bench_set_copies(struct hsm *h, int on)
{
	hsm_lock(&h->mu);
	h->copies = on != 0;
	h->copies_refused = 0;
	/* Every key looks its handle up again, the new way. */
	h->gen++;
	hsm_unlock(&h->mu);
}

void
hsm_bench_set_fast_check(struct hsm *h, int on)
{
	__atomic_store_n(&h->fast_check, on != 0, __ATOMIC_RELAXED);
}

/* One C_SignInit + C_Sign on a borrowed session. */
static int
hsm_sign_once(struct hsm *h, struct hsm_key *k, const uint8_t *msg, size_t len,
    uint8_t *raw, size_t *rawlen, struct hsm_op *op)
{
	struct ck_rsa_pkcs_pss_params pss = { CKM_SHA256, CKG_MGF1_SHA256,
		HSM_PSS_SALT };
	struct ck_mechanism mech = { 0, NULL, 0 };
	ck_session_handle_t s;
	ck_object_handle_t obj;
	unsigned long n = HSM_SIG_MAX;
	ck_rv_t rv;
	int rc;

	switch (k->alg) {
	case HSM_ED25519:
		/* No parameters: pure Ed25519 (PKCS#11 v3.0, CKM_EDDSA). */
		mech.mechanism = CKM_EDDSA;
		break;
	case HSM_ECDSA_P256:
	case HSM_ECDSA_P384:
		mech.mechanism = CKM_ECDSA;
		break;
	case HSM_RSA3072_PSS:
	case HSM_RSA4096_PSS:
		mech.mechanism = CKM_RSA_PKCS_PSS;
		mech.parameter = &pss;
		mech.parameter_len = sizeof(pss);
		break;
	}

	/* The session goes back judged by this attempt's result alone. */
	op->rv = CKR_OK;
	if ((rc = hsm_pool_get(h, &s, op)) != KT_OK)
		return rc;
	if ((rc = hsm_key_handle(h, k, s, &obj, op)) != KT_OK)
		goto out;
	if ((rv = h->f->C_SignInit(s, &mech, obj)) != CKR_OK) {
		rc = hsm_fail(op, rv, "C_SignInit with key '%s'", k->label);
		goto out;
	}
	/*
	 * The buffer fits every supported signature, so C_Sign cannot stop
	 * at CKR_BUFFER_TOO_SMALL and leave the operation active.
	 */
	if ((rv = h->f->C_Sign(s, (unsigned char *)msg, len, raw, &n)) !=
	    CKR_OK) {
		rc = hsm_fail(op, rv, "C_Sign with key '%s'", k->label);
		goto out;
	}
	if (n == 0 || n > hsm_sig_rawmax(k->alg)) {
		rc = hsm_error(op, KT_EVERIFY,
		    "the token returned a %lu-byte signature", n);
		goto out;
	}
	*rawlen = n;
out:
	hsm_pool_put(h, s, op->rv);
	return rc;
}

/*
 * PKCS#11 returns ECDSA signatures as r || s, each as long as the group
 * order (PKCS#11 v2.40 Mechanisms 2.3.1); X.509 and `openssl dgst` want
 * the DER Ecdsa-Sig-Value of RFC 3279 section 2.2.3.
 */
static int
hsm_ecdsa_der(const uint8_t *raw, size_t rawlen, size_t half, uint8_t *out,
    size_t cap, size_t *outlen, struct hsm_op *op)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *p = out;
	int n, rc = KT_OK;

	if (rawlen != 2 * half)
		return hsm_error(op, KT_EVERIFY,
		    "the token returned a %zu-byte ECDSA signature, not %zu",
		    rawlen, 2 * half);
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (r = BN_bin2bn(raw, (int)half, NULL)) == NULL ||
	    (s = BN_bin2bn(raw + half, (int)half, NULL)) == NULL ||
	    ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		rc = hsm_error(op, KT_ENOMEM, "out of memory");
		goto out;
	}
	if ((n = i2d_ECDSA_SIG(es, NULL)) <= 0 || (size_t)n > cap ||
	    i2d_ECDSA_SIG(es, &p) != n) {
		rc = hsm_error(
		    op, KT_EINTERNAL, "cannot encode the ECDSA signature");
		goto out;
	}
	*outlen = (size_t)n;
out:
	ECDSA_SIG_free(es);
	ERR_clear_error();
	return rc;
}

void
hsm_fast_free(struct hsm_fast *f)
{
	if (f == NULL)
		return;
	ecv_free(f->ecv);
	edv_free(f->edv);
	free(f);
}

/* Builds k's fast check; NULL when it cannot be built. */
static struct hsm_fast *
hsm_fast_new(struct hsm_key *k)
{
	struct hsm_fast *f = calloc(1, sizeof(*f));
	int rc = KT_EINVAL;

	if (f == NULL)
		return NULL;
	if (k->alg == HSM_ECDSA_P256)
		rc = ecv_new(k->pub, &f->ecv);
	else if (k->alg == HSM_ED25519)
		rc = edv_new_pkey(k->pub, &f->edv);
	if (rc != KT_OK) {
		hsm_fast_free(f);
		return NULL;
	}
	return f;
}

/*
 * k's fast verifier (struct hsm_fast), built on the first call; NULL when
 * k is neither P-256 nor Ed25519, when it could not be built, or when a
 * benchmark turned it off: the check then goes through EVP.  Two threads
 * may both build one; the first to publish it wins and the other frees
 * its own.
 */
static struct hsm_fast *
hsm_key_fast(struct hsm *h, struct hsm_key *k)
{
	struct hsm_fast *f, *mine;

	if (!__atomic_load_n(&h->fast_check, __ATOMIC_RELAXED) ||
	    (k->alg != HSM_ECDSA_P256 && k->alg != HSM_ED25519))
		return NULL;
	if ((f = __atomic_load_n(&k->fast, __ATOMIC_ACQUIRE)) != NULL ||
	    __atomic_load_n(&k->fast_failed, __ATOMIC_RELAXED))
		return f;
	if ((mine = hsm_fast_new(k)) == NULL) {
		__atomic_store_n(&k->fast_failed, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	if (__atomic_compare_exchange_n(
		&k->fast, &f, mine, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return mine;
	hsm_fast_free(mine);
	return f;
}

/* Checks sig over msg with k's public key, the way a verifier would. */
static int
hsm_sig_check(struct hsm *h, struct hsm_key *k, const uint8_t *msg, size_t len,
    const uint8_t *sig, size_t siglen, struct hsm_op *op)
{
	EVP_MD_CTX *mc = NULL;
	EVP_PKEY_CTX *pc = NULL;
	struct hsm_fast *f;
	int rc = KT_OK, r = -1;

	if ((f = hsm_key_fast(h, k)) != NULL) {
		r = f->ecv != NULL ? ecv_verify(f->ecv, msg, len, sig, siglen)
				   : edv_verify(f->edv, msg, len, sig, siglen);
		if (r < 0) {
			rc = hsm_error(op, KT_EINTERNAL,
			    "cannot verify the token's signature");
			goto out;
		}
	} else if (k->alg == HSM_ED25519) {
		if ((mc = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestVerifyInit(mc, NULL, NULL, NULL, k->pub) != 1) {
			rc = hsm_error(op, KT_EINTERNAL,
			    "cannot set up Ed25519 verification");
			goto out;
		}
		r = EVP_DigestVerify(mc, sig, siglen, msg, len);
	} else {
		int rsa =
		    k->alg == HSM_RSA3072_PSS || k->alg == HSM_RSA4096_PSS;

		if ((pc = EVP_PKEY_CTX_new_from_pkey(NULL, k->pub, NULL)) ==
			NULL ||
		    EVP_PKEY_verify_init(pc) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1 ||
		    (rsa &&
			(EVP_PKEY_CTX_set_rsa_padding(
			     pc, RSA_PKCS1_PSS_PADDING) != 1 ||
			    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) !=
				1 ||
			    EVP_PKEY_CTX_set_rsa_pss_saltlen(
				pc, HSM_PSS_SALT) != 1))) {
			rc = hsm_error(op, KT_EINTERNAL,
			    "cannot set up signature verification");
			goto out;
		}
		r = EVP_PKEY_verify(pc, sig, siglen, msg, len);
	}
	if (r != 1)
		rc = hsm_error(op, KT_EVERIFY,
		    "the token's signature with key '%s' does not verify "
		    "against its public key",
		    k->label);
out:
	EVP_MD_CTX_free(mc);
	EVP_PKEY_CTX_free(pc);
	ERR_clear_error();
	return rc;
}

int
hsm_sign(struct hsm *h, struct hsm_key *k, const uint8_t *msg, size_t len,
    uint8_t *sig, size_t sigcap, size_t *siglen, char *err, size_t errlen)
{
	uint8_t raw[HSM_SIG_MAX], enc[HSM_SIG_MAX];
	size_t rawlen = 0, enclen = 0;
	struct hsm_op op;
	int rc;

	hsm_op_init(&op, err, errlen);
	if (h == NULL || k == NULL || msg == NULL || sig == NULL ||
	    siglen == NULL || k->h != h)
		return hsm_error(&op, KT_EINVAL, "bad arguments");
	if (k->alg == HSM_ED25519 && (len == 0 || len > HSM_MSG_MAX))
		return hsm_error(&op, KT_EINVAL,
		    "an Ed25519 message must be 1 to %d bytes", HSM_MSG_MAX);
	if (k->alg != HSM_ED25519 && len != HSM_DIGEST_LEN)
		return hsm_error(&op, KT_EINVAL,
		    "%s signs a %d-byte SHA-256 digest, not %zu bytes",
		    hsm_alg_name(k->alg), HSM_DIGEST_LEN, len);

	for (int attempt = 0;; attempt++) {
		uint64_t seen = hsm_generation(h);

		rc = hsm_sign_once(h, k, msg, len, raw, &rawlen, &op);
		if (rc == KT_OK || attempt > 0)
			break;
		if (hsm_rv_stale_key(op.rv)) {
			hsm_key_stale(h, k);
			continue;
		}
		if (!hsm_rv_reconnect(op.rv))
			break;
		if ((rc = hsm_reconnect(h, seen, &op)) != KT_OK)
			break;
	}
	if (rc != KT_OK)
		goto out;

	switch (k->alg) {
	case HSM_ECDSA_P256:
	case HSM_ECDSA_P384:
		rc = hsm_ecdsa_der(raw, rawlen,
		    k->alg == HSM_ECDSA_P256 ? 32 : 48, enc, sizeof(enc),
		    &enclen, &op);
		break;
	default:
		memcpy(enc, raw, rawlen);
		enclen = rawlen;
		break;
	}
	if (rc != KT_OK)
		goto out;
	if ((rc = hsm_sig_check(h, k, msg, len, enc, enclen, &op)) != KT_OK)
		goto out;
	if (enclen > sigcap) {
		rc = hsm_error(&op, KT_ETOOBIG,
		    "the signature needs %zu bytes, the buffer holds %zu",
		    enclen, sigcap);
		goto out;
	}
	memcpy(sig, enc, enclen);
	*siglen = enclen;
out:
	kt_wipe(raw, sizeof(raw));
	kt_wipe(enc, sizeof(enc));
	hsm_lock(&h->mu);
	if (rc == KT_OK)
		h->signs++;
	else
		h->sign_failures++;
	hsm_unlock(&h->mu);
	return rc;
}

int
hsm_bench_raw_sign(struct hsm *h, struct hsm_key *k, const uint8_t *msg,
    size_t len, char *err, size_t errlen)
{
	uint8_t raw[HSM_SIG_MAX];
	size_t rawlen = 0;
	struct hsm_op op;
	int rc;

	hsm_op_init(&op, err, errlen);
	if (h == NULL || k == NULL || msg == NULL || k->h != h)
		return hsm_error(&op, KT_EINVAL, "bad arguments");
	rc = hsm_sign_once(h, k, msg, len, raw, &rawlen, &op);
	/* The bytes are not checked, so they are never handed out. */
	kt_wipe(raw, sizeof(raw));
	return rc;
}

/*
 * Setup of development tokens.
 */

/* Joins dir and name into out; KT_ETOOBIG when it does not fit. */
static int
hsm_path(
    char *out, size_t cap, const char *dir, const char *name, struct hsm_op *op)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= cap)
		return hsm_error(
		    op, KT_ETOOBIG, "path too long: %s/%s", dir, name);
	return KT_OK;
}

/* Writes len bytes to a new file at path with mode 0600, then syncs it. */
static int
hsm_file_write(
    const char *path, int excl, const void *p, size_t len, struct hsm_op *op)
{
	const uint8_t *b = p;
	int fd, rc = KT_OK;
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    (excl ? O_EXCL : O_TRUNC);

	if ((fd = open(path, flags, 0600)) < 0)
		return hsm_error(op, errno == EEXIST ? KT_EEXIST : KT_EIO,
		    "cannot create %s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t w = write(fd, b, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = hsm_error(op, KT_EIO, "cannot write %s: %s", path,
			    strerror(errno));
			goto out;
		}
		b += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0)
		rc = hsm_error(
		    op, KT_EIO, "cannot sync %s: %s", path, strerror(errno));
out:
	if (close(fd) != 0 && rc == KT_OK)
		rc = hsm_error(
		    op, KT_EIO, "cannot write %s: %s", path, strerror(errno));
	return rc;
}

/* Creates directory path with mode 0700, or accepts an empty one. */
static int
hsm_dir_make(const char *path, int must_be_empty, struct hsm_op *op)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = KT_OK;

	if (mkdir(path, 0700) == 0)
		return KT_OK;
	if (errno != EEXIST)
		return hsm_error(
		    op, KT_EIO, "cannot create %s: %s", path, strerror(errno));
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return hsm_error(
		    op, KT_EIO, "%s exists and is not a directory", path);
	if (!must_be_empty)
		return KT_OK;
	if ((d = opendir(path)) == NULL)
		return hsm_error(
		    op, KT_EIO, "cannot read %s: %s", path, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		rc = hsm_error(op, KT_EEXIST,
		    "%s is not empty but no PIN file exists: an earlier "
		    "setup did not finish; remove the directory to start "
		    "over",
		    path);
		break;
	}
	(void)closedir(d);
	return rc;
}

/* A random PIN: HSM_SETUP_PIN_BYTES random bytes in lowercase hex. */
static int
hsm_pin_random(char out[2 * HSM_SETUP_PIN_BYTES + 1], struct hsm_op *op)
{
	uint8_t b[HSM_SETUP_PIN_BYTES];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		ERR_clear_error();
		return hsm_error(op, KT_EINTERNAL, "RAND_bytes failed");
	}
	kt_hex_encode(b, sizeof(b), out);
	kt_wipe(b, sizeof(b));
	return KT_OK;
}

/* Finds the slot of a token that has not been initialised yet. */
static int
hsm_slot_blank(struct ck_function_list *f, ck_slot_id_t *out, struct hsm_op *op)
{
	ck_slot_id_t slots[HSM_SLOTS_MAX];
	unsigned long n;
	int rc;

	if ((rc = hsm_slot_list(f, slots, &n, op)) != KT_OK)
		return rc;
	for (unsigned long i = 0; i < n; i++) {
		struct ck_token_info ti;
		ck_rv_t rv = f->C_GetTokenInfo(slots[i], &ti);

		if (rv != CKR_OK)
			continue;
		if ((ti.flags & CKF_TOKEN_INITIALIZED) == 0) {
			*out = slots[i];
			return KT_OK;
		}
	}
	return hsm_error(
	    op, KT_ENOTFOUND, "the module offers no uninitialised token");
}

/*
 * Initialises a blank token as label: C_InitToken with a throw-away SO
 * PIN, then the SO sets the user PIN (PKCS#11 v2.40 5.6, C_InitPIN).
 */
static int
hsm_token_init(struct ck_function_list *f, const char *label,
    const char *userpin, struct hsm_op *op)
{
	char sopin[2 * HSM_SETUP_PIN_BYTES + 1];
	unsigned char padded[32];
	ck_session_handle_t s = 0;
	ck_slot_id_t slot;
	int rc, open = 0, login = 0;
	ck_rv_t rv;

	if ((rc = hsm_pin_random(sopin, op)) != KT_OK)
		goto out;
	if ((rc = hsm_slot_blank(f, &slot, op)) != KT_OK)
		goto out;
	hsm_token_label_pad(label, padded);
	rv =
	    f->C_InitToken(slot, (unsigned char *)sopin, strlen(sopin), padded);
	if (rv != CKR_OK) {
		rc = hsm_fail(op, rv, "initialising token '%s'", label);
		goto out;
	}
	/* SoftHSM may move an initialised token to another slot number. */
	if ((rc = hsm_slot_find(f, label, &slot, op)) != KT_OK)
		goto out;
	rv = f->C_OpenSession(
	    slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		rc = hsm_fail(op, rv, "opening a session on token '%s'", label);
		goto out;
	}
	open = 1;
	rv = f->C_Login(s, CKU_SO, (unsigned char *)sopin, strlen(sopin));
	if (rv != CKR_OK) {
		rc = hsm_fail(op, rv, "logging in to token '%s' as SO", label);
		goto out;
	}
	login = 1;
	rv = f->C_InitPIN(s, (unsigned char *)userpin, strlen(userpin));
	if (rv != CKR_OK) {
		rc = hsm_fail(
		    op, rv, "setting the user PIN of token '%s'", label);
		goto out;
	}
out:
	if (login)
		(void)f->C_Logout(s);
	if (open)
		(void)f->C_CloseSession(s);
	kt_wipe(sopin, sizeof(sopin));
	return rc;
}

int
hsm_softhsm_setup(const char *hsmdir, const char *const *labels, size_t nlabels,
    const char *module, char *err, size_t errlen)
{
	char conf[PATH_MAX], pinpath[PATH_MAX], tokens[PATH_MAX];
	char pin[2 * HSM_SETUP_PIN_BYTES + 2], text[PATH_MAX + 256];
	char *abs = NULL;
	struct hsm_module *m = NULL;
	struct hsm_op op;
	struct stat st;
	int rc, n;

	hsm_op_init(&op, err, errlen);
	if (hsmdir == NULL || hsmdir[0] == '\0' || labels == NULL ||
	    nlabels == 0)
		return hsm_error(&op, KT_EINVAL, "missing argument");
	for (size_t i = 0; i < nlabels; i++) {
		if (!hsm_label_ok(labels[i], HSM_TOKEN_LABEL_MAX))
			return hsm_error(&op, KT_EINVAL,
			    "a token label must be 1 to %d printable bytes",
			    HSM_TOKEN_LABEL_MAX);
		for (size_t j = 0; j < i; j++)
			if (strcmp(labels[i], labels[j]) == 0)
				return hsm_error(&op, KT_EINVAL,
				    "token label '%s' given twice", labels[i]);
	}
	if (module == NULL)
		module = HSM_DEFAULT_MODULE;

	if ((rc = hsm_dir_make(hsmdir, 0, &op)) != KT_OK)
		goto out;
	/* SoftHSM resolves tokendir against its own working directory. */
	if ((abs = realpath(hsmdir, NULL)) == NULL) {
		rc = hsm_error(&op, KT_EIO, "cannot resolve %s: %s", hsmdir,
		    strerror(errno));
		goto out;
	}
	if (strchr(abs, '\n') != NULL) {
		rc = hsm_error(
		    &op, KT_EINVAL, "%s cannot be named in softhsm2.conf", abs);
		goto out;
	}
	if ((rc = hsm_path(pinpath, sizeof(pinpath), abs, HSM_SOFTHSM_PIN_FILE,
		 &op)) != KT_OK ||
	    (rc = hsm_path(conf, sizeof(conf), abs, HSM_SOFTHSM_CONF_FILE,
		 &op)) != KT_OK ||
	    (rc = hsm_path(tokens, sizeof(tokens), abs, HSM_SOFTHSM_TOKEN_DIR,
		 &op)) != KT_OK)
		goto out;
	if (lstat(pinpath, &st) == 0) {
		rc = hsm_error(&op, KT_EEXIST,
		    "%s exists: the tokens are set up already", pinpath);
		goto out;
	}
	if ((rc = hsm_dir_make(tokens, 1, &op)) != KT_OK)
		goto out;

	n = snprintf(text, sizeof(text),
	    "# SoftHSMv2 configuration for keytrail's development tokens.\n"
	    "directories.tokendir = %s\n"
	    "objectstore.backend = file\n"
	    "log.level = ERROR\n"
	    "slots.removable = false\n",
	    tokens);
	if (n < 0 || (size_t)n >= sizeof(text)) {
		rc = hsm_error(&op, KT_ETOOBIG, "path too long: %s", tokens);
		goto out;
	}
	if ((rc = hsm_file_write(conf, 0, text, (size_t)n, &op)) != KT_OK)
		goto out;

	if ((rc = hsm_pin_random(pin, &op)) != KT_OK)
		goto out;
	if ((rc = hsm_module_acquire(module, conf, &m, &op)) != KT_OK)
		goto out;
	for (size_t i = 0; i < nlabels; i++)
		if ((rc = hsm_token_init(m->f, labels[i], pin, &op)) != KT_OK)
			goto out;

	/* Last: the PIN file's existence says the setup is complete. */
	n = (int)strlen(pin);
	pin[n++] = '\n';
	rc = hsm_file_write(pinpath, 1, pin, (size_t)n, &op);
out:
	hsm_module_release(m);
	kt_wipe(pin, sizeof(pin));
	free(abs);
	return rc;
}

/*
 * Test hooks.
 */

int
hsm_test_drop_sessions(struct hsm *h, char *err, size_t errlen)
{
	struct hsm_op op;
	ck_slot_id_t slot;
	ck_rv_t rv;

	hsm_op_init(&op, err, errlen);
	hsm_lock(&h->mu);
	slot = h->slot;
	hsm_unlock(&h->mu);
	if ((rv = h->f->C_CloseAllSessions(slot)) != CKR_OK)
		return hsm_fail(&op, rv, "C_CloseAllSessions");
	return KT_OK;
}
