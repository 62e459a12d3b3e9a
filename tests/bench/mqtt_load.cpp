// A small MQTT-over-mTLS load tool for the broker benchmarks. Each "connection" is a full TLS
// handshake (no session resumption), an MQTT 3.1.1 CONNECT, the CONNACK, and a DISCONNECT.
//
//   mqtt_load rate PORT CA CERT KEY COUNT [PARALLEL [CLIENT_ID]]
//       COUNT connections, sequential or from PARALLEL connectors each connecting one after the
//       other (COUNT in all); "{}" in CERT, KEY and CLIENT_ID (default "bench") is replaced by
//       the connector's number, so each can be its own client; prints
//       "connections N failed F seconds S rate R"
//   mqtt_load rotate PORT CA CERT KEY CA_DIR SRC_CERT SRC_KEY ROTATIONS
//       connects continuously while another thread rotates the broker's server certificate
//       ROTATIONS times (new certificates from the brokertls-ca directory CA_DIR, written to the
//       files source SRC_CERT/SRC_KEY); prints handshakes attempted and failed, and the delay from
//       each new certificate on disk to the first handshake that served it. With TIMEOUT_S
//       (default 10) a rotation waits that long for its certificate to be served.
//   mqtt_load reload PORT CA CERT KEY PID
//       connects continuously, sends SIGHUP to PID (the broker) and waits (up to 300 s) until a
//       connection started after the signal is answered; prints that time and the connections
//       attempted, failed and their latency (p50, p99, max) from the signal until 1 s after.
//   mqtt_load wait PORT CA CERT KEY TIMEOUT_S
//       tries a connection every 5 ms until one is answered (a broker starting up); prints
//       "trying" after the first try that failed, then the wall-clock time (Unix seconds) it was
//       answered, so that a script can time the start without the cost of starting a client process
//       per try.
//   mqtt_load idle PORT CA CERT KEY COUNT PID
//       opens COUNT connections one after the other (client ids idle-0, idle-1, ...), holds
//       them all and prints PID's RSS before and after, and its growth per connection held.
//   mqtt_load servers CA_DIR OUT_DIR COUNT
//       issues COUNT server certificates (srv-1..srv-COUNT, for localhost and 127.0.0.1) from
//       the brokertls-ca directory CA_DIR into OUT_DIR in one batch (brokertls-ca issues one
//       server certificate per command).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "brokertls/ca/authority.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Client {
    SSL_CTX* ctx;
    int port;
};

// A TCP connection to 127.0.0.1:PORT with a 5 s read timeout; -1 when refused.
int tcp_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// CONNECT (protocol "MQTT" level 4, clean session, keepalive 60) and its CONNACK; true when
// accepted.
bool mqtt_connect(SSL* ssl, const std::string& client_id) {
    std::string p;
    p += std::string("\x00\x04MQTT\x04\x02\x00\x3c", 10);
    p += static_cast<char>(client_id.size() >> 8);
    p += static_cast<char>(client_id.size() & 0xff);
    p += client_id;
    std::string packet = std::string(1, '\x10') + static_cast<char>(p.size()) + p;
    unsigned char connack[4] = {};
    return SSL_write(ssl, packet.data(), static_cast<int>(packet.size())) > 0 &&
           SSL_read(ssl, connack, 4) == 4 && connack[0] == 0x20 && connack[3] == 0;
}

// One connection; returns the served leaf's SHA-256 fingerprint, or "" on any failure.
std::string connect_once(const Client& c, const std::string& client_id) {
    int fd = tcp_connect(c.port);
    if (fd < 0) return "";
    std::string fingerprint;
    SSL* ssl = SSL_new(c.ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
        if (mqtt_connect(ssl, client_id)) {
            X509* leaf = SSL_get0_peer_certificate(ssl);
            unsigned char md[32];
            unsigned len = 0;
            if (leaf && X509_digest(leaf, EVP_sha256(), md, &len)) {
                char hex[65];
                for (unsigned i = 0; i < len; ++i) std::snprintf(hex + 2 * i, 3, "%02x", md[i]);
                fingerprint = hex;
            }
            SSL_write(ssl, "\xe0\x00", 2);
        }
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
    return fingerprint;
}

SSL_CTX* make_ctx(const char* ca, const char* cert, const char* key) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // a full handshake every time
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (!SSL_CTX_load_verify_locations(ctx, ca, nullptr) ||
        !SSL_CTX_use_certificate_chain_file(ctx, cert) ||
        !SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM)) {
        std::fprintf(stderr, "cannot load %s / %s / %s\n", ca, cert, key);
        std::exit(1);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    return ctx;
}

std::string numbered(std::string pattern, int n) {
    if (auto at = pattern.find("{}"); at != std::string::npos)
        pattern.replace(at, 2, std::to_string(n));
    return pattern;
}

int rate(const std::vector<std::string>& a, int port, int count, int parallel) {
    std::string client_id = a.size() > 8 ? a[8] : "bench";
    std::vector<Client> clients;
    for (int t = 0; t < parallel; ++t)
        clients.push_back(
            {make_ctx(a[3].c_str(), numbered(a[4], t).c_str(), numbered(a[5], t).c_str()), port});
    std::atomic<int> next{0}, failed{0};
    auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < parallel; ++t)
        threads.emplace_back([&, t] {
            std::string id = numbered(client_id, t);
            while (next++ < count)
                if (connect_once(clients[t], id).empty()) ++failed;
        });
    for (auto& thread : threads) thread.join();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("connections %d failed %d seconds %.3f rate %.1f\n", count, failed.load(), s,
                count / s);
    return failed == 0 ? 0 : 2;
}

// COUNT server certificates for localhost and 127.0.0.1, named PREFIX0.. (or from 1).
std::vector<brokertls::IssuedFiles> issue_servers(const char* ca_dir,
                                                  const std::filesystem::path& out,
                                                  const std::string& prefix, int first, int count) {
    using namespace brokertls;
    CertificateAuthority ca(ca_dir, {}, true, DirectoryLock::Mode::Exclusive, SystemClock::now());
    std::vector<LeafRequest> requests;
    for (int i = first; i < first + count; ++i)
        requests.push_back({CertificateProfile::Server,
                            "localhost",
                            prefix + std::to_string(i),
                            {classify_name("localhost"), classify_name("127.0.0.1")},
                            30,
                            KeyType::EcP256});
    return ca.issue(requests, out, Overwrite::Allow);
}

int rotate(const Client& c, const char* ca_dir, const char* src_cert, const char* src_key,
           int rotations, int timeout_s) {
    using namespace brokertls;
    // Issue every certificate first, so the measured loop only writes files.
    auto tmp = std::filesystem::temp_directory_path() / ("mqtt-load-" + std::to_string(getpid()));
    auto issued = issue_servers(ca_dir, tmp, "rot-", 0, rotations);

    std::atomic<bool> done{false};
    std::atomic<long> attempted{0}, failed{0};
    std::mutex mu;
    std::string served;
    std::thread load([&] {
        while (!done) {
            std::string fp = connect_once(c, "bench");
            ++attempted;
            if (fp.empty()) {
                ++failed;
                continue;
            }
            std::lock_guard lock(mu);
            served = fp;
        }
    });
    std::vector<double> delays;
    for (const auto& f : issued) {
        write_file_atomic(src_key, read_file(f.key), kPrivateMode);
        write_file_atomic(src_cert, read_file(f.chain));
        auto t0 = Clock::now();
        bool seen = false;
        while (!seen && Clock::now() - t0 < std::chrono::seconds(timeout_s)) {
            {
                std::lock_guard lock(mu);
                seen = served == f.entry.fingerprint;
            }
            if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (!seen)
            std::fprintf(stderr, "certificate %s not served within %d s\n",
                         f.entry.fingerprint.c_str(), timeout_s);
        delays.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    done = true;
    load.join();
    std::filesystem::remove_all(tmp);
    std::sort(delays.begin(), delays.end());
    std::printf("rotations %d handshakes %ld failed %ld delay_ms median %.0f p95 %.0f max %.0f\n",
                rotations, attempted.load(), failed.load(), delays[delays.size() / 2],
                delays[delays.size() * 95 / 100], delays.back());
    return failed == 0 ? 0 : 2;
}

// Percentile of sorted values (nearest rank).
double percentile(const std::vector<double>& sorted, int p) {
    if (sorted.empty()) return 0;
    size_t rank = (sorted.size() * static_cast<size_t>(p) + 99) / 100;
    return sorted[std::max<size_t>(rank, 1) - 1];
}

int reload(const Client& c, pid_t broker) {
    struct Attempt {
        Clock::time_point start, end;
        bool ok;
    };
    std::atomic<bool> done{false};
    std::mutex mu;
    std::vector<Attempt> attempts;
    std::thread load([&] {
        while (!done) {
            auto start = Clock::now();
            bool ok = !connect_once(c, "bench").empty();
            std::lock_guard lock(mu);
            attempts.push_back({start, Clock::now(), ok});
        }
    });
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the connector is running
    auto signalled = Clock::now();
    if (::kill(broker, SIGHUP) != 0) {
        std::perror("kill");
        done = true;
        load.join();
        return 1;
    }
    // Answered again: a connection that began after the signal succeeded.
    std::optional<Clock::time_point> answered;
    while (!answered && Clock::now() - signalled < std::chrono::seconds(300)) {
        {
            std::lock_guard lock(mu);
            for (const auto& a : attempts)
                if (a.ok && a.start >= signalled) {
                    answered = a.end;
                    break;
                }
        }
        if (!answered) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    auto until = answered.value_or(Clock::now()) + std::chrono::seconds(1);
    std::this_thread::sleep_until(until);
    done = true;
    load.join();
    long count = 0, failed = 0;
    std::vector<double> latencies;
    for (const auto& a : attempts)
        if (a.end >= signalled && a.start <= until) {
            ++count;
            if (!a.ok) ++failed;
            latencies.push_back(std::chrono::duration<double, std::milli>(a.end - a.start).count());
        }
    std::sort(latencies.begin(), latencies.end());
    if (!answered) {
        std::printf("reload_ms timeout connects %ld failed %ld\n", count, failed);
        return 2;
    }
    std::printf("reload_ms %.0f connects %ld failed %ld latency_ms p50 %.1f p99 %.1f max %.1f\n",
                std::chrono::duration<double, std::milli>(*answered - signalled).count(), count,
                failed, percentile(latencies, 50), percentile(latencies, 99),
                latencies.empty() ? 0.0 : latencies.back());
    return failed == 0 ? 0 : 2;
}

int wait_answer(const Client& c, int timeout_s) {
    auto t0 = Clock::now();
    bool told = false;
    while (connect_once(c, "bench").empty()) {
        if (!told) {  // the script launches the broker once this is printed
            std::printf("trying\n");
            std::fflush(stdout);
            told = true;
        }
        if (Clock::now() - t0 > std::chrono::seconds(timeout_s)) {
            std::fprintf(stderr, "no answer on port %d within %d s\n", c.port, timeout_s);
            return 2;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    auto now = std::chrono::system_clock::now().time_since_epoch();
    std::printf("answered %.6f\n", std::chrono::duration<double>(now).count());
    return 0;
}

// VmRSS of PID in KiB, or -1.
long rss_kib(pid_t pid) {
    std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    std::fclose(f);
    return kib;
}

int idle(const Client& c, int count, pid_t pid) {
    long before = rss_kib(pid);
    std::vector<std::pair<int, SSL*>> held;
    int failed = 0;
    for (int i = 0; i < count; ++i) {
        int fd = tcp_connect(c.port);
        SSL* ssl = fd < 0 ? nullptr : SSL_new(c.ctx);
        if (ssl) SSL_set_fd(ssl, fd);
        if (ssl && SSL_connect(ssl) == 1 && mqtt_connect(ssl, "idle-" + std::to_string(i))) {
            held.emplace_back(fd, ssl);
            continue;
        }
        ++failed;
        SSL_free(ssl);
        ERR_clear_error();
        if (fd >= 0) close(fd);
    }
    // Every CONNACK came back through PID: each held connection is fully set up there.
    long after = rss_kib(pid);
    std::printf("connections %d failed %d rss_kib %ld -> %ld per_connection_kib %.1f\n", count,
                failed, before, after,
                held.empty() ? 0.0 : static_cast<double>(after - before) / held.size());
    for (auto [fd, ssl] : held) {
        SSL_free(ssl);
        close(fd);
    }
    return 0;
}

int servers(const char* ca_dir, const char* out, int count) {
    auto t0 = Clock::now();
    auto issued = issue_servers(ca_dir, out, "srv-", 1, count);
    std::printf("issued %zu seconds %.3f\n", issued.size(),
                std::chrono::duration<double>(Clock::now() - t0).count());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> a(argv, argv + argc);
    if (a.size() >= 7 && a.size() <= 9 && a[1] == "rate")
        return rate(a, std::stoi(a[2]), std::stoi(a[6]), a.size() > 7 ? std::stoi(a[7]) : 1);
    if ((a.size() == 10 || a.size() == 11) && a[1] == "rotate") {
        Client c{make_ctx(argv[3], argv[4], argv[5]), std::stoi(a[2])};
        return rotate(c, argv[6], argv[7], argv[8], std::stoi(a[9]),
                      a.size() == 11 ? std::stoi(a[10]) : 10);
    }
    if (a.size() == 7 && a[1] == "reload") {
        Client c{make_ctx(argv[3], argv[4], argv[5]), std::stoi(a[2])};
        return reload(c, static_cast<pid_t>(std::stol(a[6])));
    }
    if (a.size() == 7 && a[1] == "wait") {
        Client c{make_ctx(argv[3], argv[4], argv[5]), std::stoi(a[2])};
        return wait_answer(c, std::stoi(a[6]));
    }
    if (a.size() == 8 && a[1] == "idle") {
        Client c{make_ctx(argv[3], argv[4], argv[5]), std::stoi(a[2])};
        return idle(c, std::stoi(a[6]), static_cast<pid_t>(std::stol(a[7])));
    }
    if (a.size() == 5 && a[1] == "servers") return servers(argv[2], argv[3], std::stoi(a[4]));
    std::fprintf(stderr,
                 "usage: mqtt_load rate PORT CA CERT KEY COUNT [PARALLEL [CLIENT_ID]]\n"
                 "       mqtt_load rotate PORT CA CERT KEY CA_DIR SRC_CERT SRC_KEY ROTATIONS "
                 "[TIMEOUT_S]\n"
                 "       mqtt_load reload PORT CA CERT KEY PID\n"
                 "       mqtt_load wait PORT CA CERT KEY TIMEOUT_S\n"
                 "       mqtt_load idle PORT CA CERT KEY COUNT PID\n"
                 "       mqtt_load servers CA_DIR OUT_DIR COUNT\n");
    return 1;
}
