/* API client over libcurl; see client.h. */
#include "api/client.h"
#include "util/strbuf.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPLY_MAX (64u << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct strbuf *sb = user;
	return strbuf_add(sb, ptr, size * nmemb) ? 0 : size * nmemb;
}

char *api_escape(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~')
			strbuf_addch(&sb, (char)*p);
		else
			strbuf_addf(&sb, "%%%02X", *p);
	}
	return strbuf_detach(&sb, NULL);
}

int api_call(const char *socket_path, const char *method, const char *path, const void *body,
	     size_t body_len, const char *content_type, json_t **reply, struct miren_error *err)
{
	*reply = NULL;
	pthread_once(&curl_once, curl_init);
	CURL *c = curl_easy_init();
	if (!c)
		return miren_error_set(err, MIREN_EINTERNAL, "cannot initialise libcurl");
	struct strbuf out;
	strbuf_init(&out, REPLY_MAX);
	char *url = xasprintf("http://miren%s", path);
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		hdrs = curl_slist_append(hdrs, content_type ? content_type : "Content-Type: application/json");
		hdrs = curl_slist_append(hdrs, "Expect:");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	int rc = 0;
	CURLcode cc = curl_easy_perform(c);
	if (cc == CURLE_COULDNT_CONNECT && access(socket_path, F_OK) == 0 &&
	    access(socket_path, R_OK | W_OK) != 0) {
		rc = miren_error_set(err, MIREN_EPERM, "permission denied on the miren socket '%s'",
				     socket_path);
		miren_error_hint(err, "run the command as root or as the user running 'miren server'");
		goto out;
	}
	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
		rc = miren_error_set(err, MIREN_EUNAVAIL, "the miren server is not running (no answer on '%s')",
				     socket_path);
		miren_error_hint(err, "start it with 'miren server', or point MIREN_DATA_DIR or "
				      "--socket at a running one");
		goto out;
	}
	if (cc != CURLE_OK) {
		rc = miren_error_set(err, MIREN_EUNAVAIL, "talking to the miren server failed: %s",
				     errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	json_t *j = json_loadb(out.buf, out.len, 0, NULL);
	if (status >= 200 && status < 300) {
		if (!j) {
			rc = miren_error_set(err, MIREN_EINTERNAL, "the server sent a reply that is not JSON");
			goto out;
		}
		*reply = j;
		goto out;
	}
	json_t *e = json_object_get(j, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *hint = json_string_value(json_object_get(e, "hint"));
	rc = miren_err_from_code_name(json_string_value(json_object_get(e, "code")));
	if (rc == MIREN_OK)
		rc = MIREN_EINTERNAL;
	miren_error_set(err, rc, "%s", msg ? msg : "the server answered with an error");
	if (hint)
		miren_error_hint(err, "%s", hint);
	json_decref(j);
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(url);
	strbuf_release(&out);
	return rc;
}

int api_call_json(const char *socket_path, const char *method, const char *path,
		  const json_t *body, json_t **reply, struct miren_error *err)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc = api_call(socket_path, method, path, text, text ? strlen(text) : 0,
			  "Content-Type: application/json", reply, err);
	free(text);
	return rc;
}
