#include "renewal/event_sinks.hpp"

#include <curl/curl.h>

#include <memory>

#include "brokertls/identity.hpp"
#include "process/subprocess.hpp"

namespace brokertls {
namespace {

struct CurlDeleter {
    void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
    void operator()(CURLU* url) const { curl_url_cleanup(url); }
    void operator()(char* text) const { curl_free(text); }
};
template <class T>
using CurlPtr = std::unique_ptr<T, CurlDeleter>;

// The webhook URL for the log: webhook services put their secret in the user part or the
// query, and the broker log is read by more people than the configuration.
std::string loggable_url(const std::string& url) {
    CurlPtr<CURLU> parsed(curl_url());
    if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
        return "(unparsable URL)";
    curl_url_set(parsed.get(), CURLUPART_USER, nullptr, 0);
    curl_url_set(parsed.get(), CURLUPART_PASSWORD, nullptr, 0);
    curl_url_set(parsed.get(), CURLUPART_QUERY, nullptr, 0);
    curl_url_set(parsed.get(), CURLUPART_FRAGMENT, nullptr, 0);
    char* text = nullptr;
    if (curl_url_get(parsed.get(), CURLUPART_URL, &text, 0) != CURLUE_OK) return "(unparsable URL)";
    CurlPtr<char> owned(text);
    return text;
}

// The response body is not used; without a write function curl would print it to stdout.
size_t discard(char*, size_t size, size_t count, void*) {
    return size * count;
}

}  // namespace

EventSinks::EventSinks(EventsConfig config, std::function<void(const std::string&)> log)
    : config_(std::move(config)), log_(std::move(log)) {}

void EventSinks::dispatch(const RenewalEvent& event) const noexcept {
    if (config_.exec.empty() && config_.webhook.empty()) return;
    try {
        std::string json = event.to_json();
        if (!config_.exec.empty()) run_exec(json, event);
        if (!config_.webhook.empty()) post_webhook(json);
    } catch (const std::exception& e) {
        report(std::string("events: ") + e.what());
    } catch (...) {
        report("events: unknown error");
    }
}

void EventSinks::run_exec(const std::string& json, const RenewalEvent& event) const {
    std::string path = config_.exec.string();
    try {
        // A trailing newline so `read line` in a shell hook sees the whole event.
        auto result =
            run_subprocess({path}, json + "\n", config_.timeout,
                           {{"BROKERTLS_EVENT", event.type}, {"BROKERTLS_PROFILE", event.profile}});
        if (result.out_truncated || result.err_truncated)
            report("events: exec hook " + path + ": output truncated: only the first " +
                   std::to_string(kMaxCapturedOutput) + " bytes of each stream were kept");
        if (result.timed_out)
            report("events: exec hook " + path + ": timed out after " +
                   std::to_string(config_.timeout.count()) + "s");
        else if (Problem why = result.problem())
            report("events: exec hook " + path + ": " + printable(*why));
    } catch (const std::exception& e) {
        // run_subprocess names the program: "PATH: cannot start: reason".
        report(std::string("events: exec hook ") + e.what());
    }
}

void EventSinks::post_webhook(const std::string& json) const {
    std::string where = "events: webhook " + loggable_url(config_.webhook) + ": ";
    CurlPtr<CURL> curl(curl_easy_init());
    if (!curl) return report(where + "cannot initialise libcurl");
    // "Expect:" off: curl would otherwise wait up to a second for a 100-continue on big bodies.
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    if (headers) headers = curl_slist_append(headers, "Expect:");
    CurlPtr<curl_slist> header_list(headers);
    if (!headers) return report(where + "out of memory");

    long timeout_ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(config_.timeout).count());
    char error[CURL_ERROR_SIZE] = "";
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, config_.webhook.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // worker threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json.size()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "brokertls/0.1");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);

    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) return report(where + (error[0] ? error : curl_easy_strerror(rc)));
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) report(where + "HTTP " + std::to_string(status));
}

void EventSinks::report(const std::string& line) const noexcept {
    if (!log_) return;
    try {
        log_(line);
    } catch (...) {
        // The logger failing is no reason to stop a renewal.
    }
}

}  // namespace brokertls
