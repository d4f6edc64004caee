/* API client over libcurl; see client.h. */
#include "api/client.h"
#include "util/compiler.h"
#include "util/io.h"
#include "util/strbuf.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define REPLY_MAX (64u << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

char *api_escape(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~')
			strbuf_addch(&sb, (char)*p);
		else
			strbuf_addf(&sb, "%%%02X", *p);
	}
	return strbuf_detach(&sb, NULL);
}

/* One transfer's state, shared by the write callback and the caller. */
struct xfer {
	CURL *c;
	struct strbuf body; /* JSON replies, and error bodies of streams */
	api_sink_fn sink;   /* streams: where 2xx bodies go */
	void *user;
	int sink_rc;
	long status;
	const char *want_header;
	char *header_value;
	api_progress_fn progress;
	void *puser;
	int fd; /* uploads */
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (!x->status)
		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->sink && x->status >= 200 && x->status < 300) {
		x->sink_rc = x->sink(x->user, ptr, n);
		return x->sink_rc ? 0 : n;
	}
	return strbuf_add(&x->body, ptr, n) ? 0 : n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nitems, l = x->want_header ? strlen(x->want_header) : 0;
	if (l && n > l + 1 && !strncasecmp(buf, x->want_header, l) && buf[l] == ':') {
		const char *v = buf + l + 1;
		size_t vl = n - l - 1;
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		free(x->header_value);
		x->header_value = xstrndup(v, vl);
	}
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	ssize_t n = read(x->fd, buf, size * nitems);
	return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
}

static int on_progress(void *arg, curl_off_t dltotal MIREN_UNUSED, curl_off_t dlnow,
		       curl_off_t ultotal MIREN_UNUSED, curl_off_t ulnow)
{
	struct xfer *x = arg;
	if (x->progress)
		x->progress(x->puser, (unsigned long long)ulnow, (unsigned long long)dlnow);
	return 0;
}

static CURL *xfer_init(struct xfer *x, const char *socket_path, const char *method,
		       const char *path, char **url, char *errbuf)
{
	pthread_once(&curl_once, curl_init);
	x->c = curl_easy_init();
	if (!x->c)
		return NULL;
	strbuf_init(&x->body, REPLY_MAX);
	*url = xasprintf("http://miren%s", path);
	curl_easy_setopt(x->c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	curl_easy_setopt(x->c, CURLOPT_URL, *url);
	curl_easy_setopt(x->c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(x->c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(x->c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(x->c, CURLOPT_NOSIGNAL, 1L);
	if (x->want_header) {
		curl_easy_setopt(x->c, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(x->c, CURLOPT_HEADERDATA, x);
	}
	if (x->progress) {
		curl_easy_setopt(x->c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(x->c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(x->c, CURLOPT_XFERINFODATA, x);
	}
	return x->c;
}

/*
 * Runs the transfer and turns its outcome into a miren_err: the server not
 * running, an error reply's {"error":...}, or a broken transfer.  On a 2xx
 * JSON reply (no sink) *reply gets the parsed body.
 */
static enum miren_err xfer_perform(struct xfer *x, const char *socket_path, const char *errbuf,
				   json_t **reply, struct miren_error *err)
{
	CURLcode cc = curl_easy_perform(x->c);
	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->status);
	if (cc == CURLE_COULDNT_CONNECT && access(socket_path, F_OK) == 0 &&
	    access(socket_path, R_OK | W_OK) != 0) {
		miren_error_set(err, MIREN_EPERM, "permission denied on the miren socket '%s'",
				socket_path);
		miren_error_hint(err,
				 "run the command as root or as the user running 'miren server'");
		return MIREN_EPERM;
	}
	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
		miren_error_set(err, MIREN_EUNAVAIL,
				"the miren server is not running (no answer on '%s')", socket_path);
		miren_error_hint(err, "start it with 'miren server', or point MIREN_DATA_DIR or "
				      "--socket at a running one");
		return MIREN_EUNAVAIL;
	}
	if (x->sink_rc)
		return miren_error_set(err, x->sink_rc, "writing the received data failed: %s",
				       miren_strerror(x->sink_rc));
	if (cc != CURLE_OK && !(x->status >= 300 && x->body.len))
		return miren_error_set(err, MIREN_EUNAVAIL,
				       "the transfer with the miren server broke off: %s",
				       errbuf[0] ? errbuf : curl_easy_strerror(cc));
	json_t *j = x->body.len ? json_loadb(x->body.buf, x->body.len, 0, NULL) : NULL;
	if (x->status >= 200 && x->status < 300) {
		if (x->sink) {
			json_decref(j);
			return 0;
		}
		if (!j)
			return miren_error_set(err, MIREN_EINTERNAL,
					       "the server sent a reply that is not JSON");
		*reply = j;
		return 0;
	}
	json_t *e = json_object_get(j, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *detail = json_string_value(json_object_get(e, "detail"));
	const char *hint = json_string_value(json_object_get(e, "hint"));
	enum miren_err rc = miren_err_from_code_name(json_string_value(json_object_get(e, "code")));
	if (rc == MIREN_OK)
		rc = MIREN_EINTERNAL;
	miren_error_set(err, rc, "%s", msg ? msg : "the server answered with an error");
	if (detail && *detail)
		miren_error_detail(err, "%s", detail);
	if (hint && *hint)
		miren_error_hint(err, "%s", hint);
	json_decref(j);
	return rc;
}

static void xfer_cleanup(struct xfer *x, struct curl_slist *hdrs, char *url)
{
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(x->c);
	free(url);
	strbuf_release(&x->body);
}

enum miren_err api_call(const char *socket_path, const char *method, const char *path,
			const void *body, size_t body_len, const char *content_type, json_t **reply,
			struct miren_error *err)
{
	*reply = NULL;
	struct xfer x = { 0 };
	char errbuf[CURL_ERROR_SIZE] = "", *url = NULL;
	if (!xfer_init(&x, socket_path, method, path, &url, errbuf))
		return miren_error_set(err, MIREN_EINTERNAL, "cannot initialise libcurl");
	struct curl_slist *hdrs = NULL;
	if (body) {
		hdrs = curl_slist_append(hdrs, content_type ? content_type
							    : "Content-Type: application/json");
		hdrs = curl_slist_append(hdrs, "Expect:");
		curl_easy_setopt(x.c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(x.c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(x.c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	enum miren_err rc = xfer_perform(&x, socket_path, errbuf, reply, err);
	xfer_cleanup(&x, hdrs, url);
	return rc;
}

enum miren_err api_stream(const char *socket_path, const char *method, const char *path,
			  const char *want_header, char **header_value, api_sink_fn sink,
			  void *user, api_progress_fn progress, void *puser,
			  struct miren_error *err)
{
	struct xfer x = { .sink = sink,
			  .user = user,
			  .want_header = want_header,
			  .progress = progress,
			  .puser = puser };
	char errbuf[CURL_ERROR_SIZE] = "", *url = NULL;
	if (!xfer_init(&x, socket_path, method, path, &url, errbuf))
		return miren_error_set(err, MIREN_EINTERNAL, "cannot initialise libcurl");
	curl_easy_setopt(x.c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	curl_easy_setopt(x.c, CURLOPT_POSTFIELDS, "");
	json_t *unused = NULL;
	enum miren_err rc = xfer_perform(&x, socket_path, errbuf, &unused, err);
	if (header_value) {
		*header_value = x.header_value;
		x.header_value = NULL;
	}
	free(x.header_value);
	xfer_cleanup(&x, NULL, url);
	return rc;
}

enum miren_err api_upload(const char *socket_path, const char *method, const char *path, int fd,
			  unsigned long long size, api_progress_fn progress, void *puser,
			  json_t **reply, struct miren_error *err)
{
	*reply = NULL;
	struct xfer x = { .fd = fd, .progress = progress, .puser = puser };
	char errbuf[CURL_ERROR_SIZE] = "", *url = NULL;
	if (!xfer_init(&x, socket_path, method, path, &url, errbuf))
		return miren_error_set(err, MIREN_EINTERNAL, "cannot initialise libcurl");
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/zstd");
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(x.c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(x.c, CURLOPT_POST, 1L);
	curl_easy_setopt(x.c, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(x.c, CURLOPT_READDATA, &x);
	curl_easy_setopt(x.c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
	enum miren_err rc = xfer_perform(&x, socket_path, errbuf, reply, err);
	xfer_cleanup(&x, hdrs, url);
	return rc;
}

enum miren_err api_call_json(const char *socket_path, const char *method, const char *path,
			     const json_t *body, json_t **reply, struct miren_error *err)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	enum miren_err rc = api_call(socket_path, method, path, text, text ? strlen(text) : 0,
				     "Content-Type: application/json", reply, err);
	free(text);
	return rc;
}
