// The load generator of tests/bench/service_bench.sh.
//
//   service_load --target brokertls|cfssl --url BASE --cacert FILE --key-file FILE
//                [--key-id ID] [--profile NAME] [--requests M] [--clients C] [--prefix P]
//       Makes M ECDSA P-256 keys and CSRs (CN P-1 .. P-M) before the clock starts, then sends
//       each CSR once from C concurrent clients: libcurl's multi interface on one thread, HTTP/1.1
//       with keep-alive (a client's connection is reused, as a device's would be). brokertls:
//       POST BASE/v1/certificates {"csr", "profile"}, each request signed with the request HMAC
//       (fresh time and nonce) under key id ID. cfssl: POST BASE/api/v1/cfssl/authsign
//       {"token", "request"} with cfssl's "standard" auth (HMAC-SHA256 of the request under the
//       hex key of the key file). After the clock stops, every answer is checked: status 200, a
//       certificate chain whose leaf has the CSR's CN and key. Prints one line of key=value.
//   service_load --idle N --url https://127.0.0.1:PORT --cacert FILE --pid PID [--hold S]
//       Opens N TLS connections one after the other, sends one request on each (GET /idle,
//       answered 404 with keep-alive) and keeps them all open; reads the VmRSS of process PID
//       (the service) before and after, waits S seconds (default 5), then sends a second request
//       on every connection to show the service still holds them. Prints one line of key=value.

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/error.hpp"
#include "fleet/request_hmac.hpp"

namespace {

using namespace brokertls;
using json = nlohmann::json;
using Steady = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: service_load --target brokertls|cfssl --url BASE --cacert FILE --key-file FILE\n"
    "                    [--key-id ID] [--profile NAME] [--requests M] [--clients C] [--prefix P]\n"
    "       service_load --idle N --url https://127.0.0.1:PORT --cacert FILE --pid PID [--hold "
    "S]\n";
constexpr const char* kV1Path = "/v1/certificates";
constexpr const char* kCfsslPath = "/api/v1/cfssl/authsign";

struct Options {
    std::string target, url, cacert, key, key_id = "bench", profile = "device", prefix = "dev";
    std::size_t requests = 1000, clients = 32, idle = 0;
    int pid = 0, hold_seconds = 5;
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "service_load: " << why << "\n" << kUsage;
    std::exit(1);
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i += 2) {
        std::string name = argv[i];
        if (i + 1 >= argc) usage(name + " needs a value");
        std::string value = argv[i + 1];
        auto number = [&] {
            char* end = nullptr;
            unsigned long n = std::strtoul(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0') usage(name + " needs a number");
            return static_cast<std::size_t>(n);
        };
        if (name == "--target") {
            o.target = value;
        } else if (name == "--url") {
            o.url = value;
        } else if (name == "--cacert") {
            o.cacert = value;
        } else if (name == "--key-file") {
            std::ifstream in(value);
            if (!std::getline(in, o.key) || o.key.empty()) usage("no key in " + value);
        } else if (name == "--key-id") {
            o.key_id = value;
        } else if (name == "--profile") {
            o.profile = value;
        } else if (name == "--prefix") {
            o.prefix = value;
        } else if (name == "--requests") {
            o.requests = number();
        } else if (name == "--clients") {
            o.clients = number();
        } else if (name == "--idle") {
            o.idle = number();
        } else if (name == "--pid") {
            o.pid = static_cast<int>(number());
        } else if (name == "--hold") {
            o.hold_seconds = static_cast<int>(number());
        } else {
            usage("unknown option " + name);
        }
    }
    if (o.url.empty() || o.cacert.empty()) usage("needs --url and --cacert");
    return o;
}

std::string base64(std::string_view data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(data.data()),
                            static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0 || !is_hex_text(hex)) usage("the cfssl key must be hex");
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2)
        out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
    return out;
}

// cfssl's "standard" auth provider: the token is HMAC-SHA256 of the request bytes; both travel
// base64-encoded (Go's encoding of []byte in JSON).
std::string cfssl_body(std::string_view key, const std::string& request) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(request.data()), request.size(), mac, &length);
    return json{{"token", base64({reinterpret_cast<char*>(mac), length})},
                {"request", base64(request)}}
        .dump();
}

struct Job {
    std::string common_name;
    PrivateKey key;
    std::string payload;  // brokertls: the body; cfssl: the signing request the token covers
};

struct Result {
    CURLcode code = CURLE_OK;
    long status = 0;
    std::string body;
    double ms = 0;
};

struct Slot {
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    std::string body, response;
    std::size_t job = 0;
    Steady::time_point start;
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* slot) {
    static_cast<Slot*>(slot)->response.append(data, size * count);
    return size * count;
}

// What is wrong with an answer, or nothing.
Problem check(const Options& o, const Job& job, const Result& r) {
    if (r.code != CURLE_OK) return std::string(curl_easy_strerror(r.code));
    if (r.status != 200) return "status " + std::to_string(r.status) + ": " + r.body.substr(0, 200);
    try {
        json answer = json::parse(r.body);
        const json& holder = o.target == "cfssl" ? answer.at("result") : answer;
        auto chain =
            Certificate::parse_chain(holder.at("certificate").get<std::string>(), "the answer");
        if (chain.front().common_name() != job.common_name)
            return "certificate for " + chain.front().common_name() + ", not " + job.common_name;
        if (!chain.front().matches_key(job.key)) return "certificate for another key";
    } catch (const std::exception& e) {
        return std::string(e.what()) + ": " + r.body.substr(0, 200);
    }
    return std::nullopt;
}

double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    auto i = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
    return values[i];
}

int load(const Options& o) {
    bool cfssl = o.target == "cfssl";
    if (!cfssl && o.target != "brokertls") usage("--target must be brokertls or cfssl");
    if (o.key.empty() || o.requests == 0 || o.clients == 0)
        usage("needs --key-file, --requests > 0 and --clients > 0");
    std::string key = cfssl ? from_hex(o.key) : o.key;

    std::vector<Job> jobs;
    jobs.reserve(o.requests);
    for (std::size_t i = 1; i <= o.requests; ++i) {
        std::string cn = o.prefix + "-" + std::to_string(i);
        auto private_key = PrivateKey::generate(KeyType::EcP256);
        std::string pem = CertificateRequest::create(private_key, cn, {}).to_pem();
        std::string payload =
            cfssl ? json{{"certificate_request", pem}, {"profile", o.profile}}.dump()
                  : json{{"csr", pem}, {"profile", o.profile}}.dump();
        jobs.push_back({cn, std::move(private_key), std::move(payload)});
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM* multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(o.clients));
    std::string url = o.url + (cfssl ? kCfsslPath : kV1Path);
    std::vector<Slot> slots(std::min(o.clients, o.requests));
    for (auto& s : slots) {
        s.easy = curl_easy_init();
        curl_easy_setopt(s.easy, CURLOPT_URL, url.c_str());
        curl_easy_setopt(s.easy, CURLOPT_CAINFO, o.cacert.c_str());
        // Go's server would otherwise speak HTTP/2 and multiplex every client on one connection.
        curl_easy_setopt(s.easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(s.easy, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(s.easy, CURLOPT_PRIVATE, &s);
        curl_easy_setopt(s.easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s.easy, CURLOPT_TIMEOUT, 60L);
    }

    std::vector<Result> results(o.requests);
    std::size_t next = 0, done = 0;
    long connections = 0;
    auto send = [&](Slot& s) {
        s.job = next++;
        const std::string& payload = jobs[s.job].payload;
        std::string authorization;
        if (cfssl) {
            s.body = cfssl_body(key, payload);
        } else {
            s.body = payload;
            authorization = "Authorization: " + sign_request_hmac(o.key_id, key, "POST", kV1Path,
                                                                  payload, SystemClock::now());
        }
        s.response.clear();
        curl_slist_free_all(s.headers);
        s.headers = curl_slist_append(nullptr, "Content-Type: application/json");
        s.headers = curl_slist_append(s.headers, "Expect:");
        if (!authorization.empty()) s.headers = curl_slist_append(s.headers, authorization.c_str());
        curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, s.headers);
        curl_easy_setopt(s.easy, CURLOPT_POSTFIELDS, s.body.data());
        curl_easy_setopt(s.easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(s.body.size()));
        s.start = Steady::now();
        curl_multi_add_handle(multi, s.easy);
    };

    auto t0 = Steady::now();
    for (auto& s : slots) send(s);
    while (done < o.requests) {
        int running = 0;
        curl_multi_perform(multi, &running);
        int left = 0;
        while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
            if (message->msg != CURLMSG_DONE) continue;
            Slot* s = nullptr;
            curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &s);
            Result& r = results[s->job];
            r.code = message->data.result;
            r.ms = std::chrono::duration<double, std::milli>(Steady::now() - s->start).count();
            curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &r.status);
            long opened = 0;
            curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &opened);
            connections += opened;
            r.body = std::move(s->response);
            curl_multi_remove_handle(multi, s->easy);
            ++done;
            if (next < o.requests) send(*s);
        }
        if (done < o.requests) curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    }
    double seconds = std::chrono::duration<double>(Steady::now() - t0).count();

    std::size_t failures = 0;
    std::vector<double> latencies;
    for (std::size_t i = 0; i < o.requests; ++i) {
        latencies.push_back(results[i].ms);
        if (auto problem = check(o, jobs[i], results[i])) {
            if (failures++ == 0)
                std::cerr << "service_load: " << jobs[i].common_name << ": " << *problem << "\n";
        }
    }
    for (auto& s : slots) {
        curl_easy_cleanup(s.easy);
        curl_slist_free_all(s.headers);
    }
    curl_multi_cleanup(multi);
    std::printf(
        "target=%s requests=%zu clients=%zu seconds=%.3f certs_per_s=%.1f failures=%zu "
        "p50_ms=%.1f p99_ms=%.1f connections=%ld\n",
        o.target.c_str(), o.requests, slots.size(), seconds,
        static_cast<double>(o.requests - failures) / seconds, failures, percentile(latencies, 0.50),
        percentile(latencies, 0.99), connections);
    return failures == 0 ? 0 : 2;
}

long rss_kib(const std::string& status_file) {
    std::ifstream in(status_file);
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("VmRSS:")) return std::atol(line.c_str() + 6);
    return -1;
}

std::size_t open_fds(int pid) {
    std::error_code ec;
    std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
    return ec ? 0 : static_cast<std::size_t>(std::distance(it, end));
}

struct Connection {
    int fd = -1;
    SSL* ssl = nullptr;
};

// One request and its complete answer (head and Content-Length body); whether it was a 404.
bool ask(const Connection& c) {
    static const std::string request = "GET /idle HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (SSL_write(c.ssl, request.data(), static_cast<int>(request.size())) <= 0) return false;
    std::string in;
    char buffer[4096];
    while (true) {
        std::size_t head = in.find("\r\n\r\n");
        if (head != std::string::npos) {
            std::size_t at = ascii_lower(in.substr(0, head)).find("content-length:");
            std::size_t length = at == std::string::npos ? 0 : std::stoul(in.substr(at + 15));
            if (in.size() >= head + 4 + length) return in.starts_with("HTTP/1.1 404");
        }
        int n = SSL_read(c.ssl, buffer, sizeof buffer);
        if (n <= 0) return false;
        in.append(buffer, static_cast<std::size_t>(n));
    }
}

Connection open_connection(SSL_CTX* ctx, int port) {
    Connection c;
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{10, 0};  // bounds every read and write
    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return c;
    c.ssl = SSL_new(ctx);
    SSL_set_fd(c.ssl, c.fd);
    SSL_set1_host(c.ssl, "127.0.0.1");
    if (SSL_connect(c.ssl) != 1 || !ask(c)) {
        SSL_free(c.ssl);
        c.ssl = nullptr;
    }
    return c;
}

int idle(const Options& o) {
    std::size_t colon = o.url.rfind(':');
    if (!o.url.starts_with("https://127.0.0.1:") || o.pid <= 0)
        usage("--idle needs --url https://127.0.0.1:PORT and --pid");
    int port = std::atoi(o.url.c_str() + colon + 1);
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (SSL_CTX_load_verify_locations(ctx, o.cacert.c_str(), nullptr) != 1)
        usage("cannot read " + o.cacert);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);  // so that 10,000 fit in this process too

    std::string status_file = "/proc/" + std::to_string(o.pid) + "/status";
    long before = rss_kib(status_file);
    std::size_t fds_before = open_fds(o.pid);
    auto t0 = Steady::now();
    std::vector<Connection> connections;
    std::size_t failed = 0;
    for (std::size_t i = 0; i < o.idle; ++i) {
        Connection c = open_connection(ctx, port);
        if (c.ssl) {
            connections.push_back(c);
        } else {
            ++failed;
            if (c.fd >= 0) close(c.fd);
        }
    }
    double seconds = std::chrono::duration<double>(Steady::now() - t0).count();
    long after = rss_kib(status_file);
    std::size_t fds_after = open_fds(o.pid);
    std::this_thread::sleep_for(std::chrono::seconds(o.hold_seconds));
    std::size_t answering = 0;
    for (const auto& c : connections) answering += ask(c) ? 1 : 0;
    long after_hold = rss_kib(status_file);

    double per = connections.empty() ? 0
                                     : static_cast<double>(after - before) /
                                           static_cast<double>(connections.size());
    std::printf(
        "idle connections=%zu failed=%zu open_seconds=%.1f service_rss_before_kib=%ld "
        "service_rss_after_kib=%ld kib_per_connection=%.1f service_fds=%zu->%zu "
        "still_answering_after_%ds=%zu service_rss_after_hold_kib=%ld client_rss_kib=%ld\n",
        connections.size(), failed, seconds, before, after, per, fds_before, fds_after,
        o.hold_seconds, answering, after_hold, rss_kib("/proc/self/status"));
    for (const auto& c : connections) {
        SSL_free(c.ssl);
        close(c.fd);
    }
    SSL_CTX_free(ctx);
    return failed == 0 && answering == connections.size() ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse_options(argc, argv);
    try {
        return o.idle > 0 ? idle(o) : load(o);
    } catch (const std::exception& e) {
        std::cerr << "service_load: " << e.what() << "\n";
        return 2;
    }
}
