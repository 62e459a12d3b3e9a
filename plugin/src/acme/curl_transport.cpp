// The libcurl HttpTransport. One easy handle per transport, reset before each request so its
// connection cache (and TLS session) is reused across the many small ACME requests.

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "acme/http.hpp"
#include "brokertls/error.hpp"

namespace brokertls {

namespace {

// ACME answers are small (a certificate chain is a few KiB); a larger body is not an answer
// we can use, so it is cut off rather than buffered without limit.
constexpr size_t kMaxBody = 1 << 20;

struct Received {
    HttpHeaders headers;
    std::string body;
    bool too_large = false;
};

std::string trim(std::string text) {
    text.erase(0, text.find_first_not_of(" \t\r\n"));
    text.erase(text.find_last_not_of(" \t\r\n") + 1);
    return text;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* received = static_cast<Received*>(user);
    std::string line(data, size * count);
    // A new status line (after a 100 Continue) starts a new set of headers.
    if (line.rfind("HTTP/", 0) == 0) {
        received->headers.clear();
        return size * count;
    }
    auto colon = line.find(':');
    if (colon == std::string::npos) return size * count;
    std::string name = trim(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    received->headers.emplace_back(name, trim(line.substr(colon + 1)));
    return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
    auto* received = static_cast<Received*>(user);
    if (received->body.size() + size * count > kMaxBody) {
        received->too_large = true;
        return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    received->body.append(data, size * count);
    return size * count;
}

struct CurlSlist {
    curl_slist* list = nullptr;
    ~CurlSlist() { curl_slist_free_all(list); }
};

int on_progress(void* cancelled, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return (*static_cast<const std::function<bool()>*>(cancelled))() ? 1 : 0;
}

class CurlTransport final : public HttpTransport {
  public:
    explicit CurlTransport(CurlOptions options) : options_(std::move(options)) {
        static std::once_flag global;
        std::call_once(global, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        handle_ = curl_easy_init();
        if (!handle_) throw Error(ErrorKind::Io, "libcurl: cannot create a handle");
    }
    ~CurlTransport() override { curl_easy_cleanup(handle_); }
    CurlTransport(const CurlTransport&) = delete;
    CurlTransport& operator=(const CurlTransport&) = delete;

    HttpResponse send(const HttpRequest& request) override {
        std::lock_guard lock(mutex_);
        curl_easy_reset(handle_);
        Received received;
        char error[CURL_ERROR_SIZE] = "";
        CurlSlist headers;
        for (const auto& [name, value] : request.headers)
            headers.list = curl_slist_append(headers.list, (name + ": " + value).c_str());

        CURL* h = handle_;
        curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // ACME URLs are never redirected
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);        // worker threads: no SIGALRM
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (options_.ca_bundle) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_bundle->c_str());
        if (options_.client_cert) {
            curl_easy_setopt(h, CURLOPT_SSLCERT, options_.client_cert->c_str());
            curl_easy_setopt(h, CURLOPT_SSLKEY, options_.client_key->c_str());
        }
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(options_.connect_timeout.count()));
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
        curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &received);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &received);
        if (headers.list) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.list);
        if (options_.cancelled) {
            curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
            curl_easy_setopt(h, CURLOPT_XFERINFODATA, &options_.cancelled);
        } else {
            curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
        }
        if (request.method == "HEAD") {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (request.method == "POST") {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                             static_cast<curl_off_t>(request.body.size()));
        } else if (request.method == "PUT") {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                             static_cast<curl_off_t>(request.body.size()));
        } else if (request.method != "GET") {
            fail(ErrorKind::Usage, request.url, "unsupported HTTP method " + request.method);
        }

        CURLcode rc = curl_easy_perform(h);
        if (rc == CURLE_ABORTED_BY_CALLBACK) fail(ErrorKind::State, request.url, "stopped");
        if (received.too_large)
            fail(ErrorKind::Io, request.url,
                 "answer larger than " + std::to_string(kMaxBody) + " bytes");
        if (rc != CURLE_OK)
            fail(ErrorKind::Io, request.url, *error ? error : curl_easy_strerror(rc));
        HttpResponse response;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
        response.headers = std::move(received.headers);
        response.body = std::move(received.body);
        return response;
    }

  private:
    CurlOptions options_;
    std::mutex mutex_;
    CURL* handle_ = nullptr;
};

}  // namespace

std::unique_ptr<HttpTransport> make_curl_transport(const CurlOptions& options) {
    return std::make_unique<CurlTransport>(options);
}

}  // namespace brokertls
