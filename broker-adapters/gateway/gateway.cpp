#include "gateway.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "brokertls/module/security_module.hpp"
#include "gateway/mqtt_connect.hpp"
#include "gateway/proxy_v2.hpp"

namespace brokertls {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Identity = GatewayListenerConfig::Identity;

namespace {

constexpr std::size_t kRelayBuffer = 16 * 1024;
constexpr std::size_t kMaxStatusRequest = 8 * 1024;
constexpr auto kTickInterval = std::chrono::milliseconds(100);
constexpr auto kStatusTimeout = std::chrono::seconds(5);
// After drain_timeout the rest are closed; their coroutines end within this.
constexpr auto kCloseWait = std::chrono::seconds(5);
constexpr auto as_tuple = asio::as_tuple(asio::use_awaitable);

// "host:port" or "[v6]:port", as endpoint_field checked it.
std::pair<std::string, std::string> split_endpoint(const std::string& text) {
    auto colon = text.rfind(':');
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    return {host, text.substr(colon + 1)};
}

std::string lower(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

// "*.example.com" covers one more label, as RFC 6125 6.4.3 allows.
bool name_matches(const std::string& pattern, const std::string& name) {
    if (pattern == name) return true;
    if (!pattern.starts_with("*.")) return false;
    auto dot = name.find('.');
    return dot != std::string::npos && dot > 0 && name.substr(dot) == pattern.substr(1);
}

// The chain is checked by SecurityModule against the listener's security profile once the
// handshake is done (before any byte reaches the broker); OpenSSL only asks for the
// certificate and checks that the client holds its key.
int accept_any_chain(int, X509_STORE_CTX*) {
    return 1;
}

// One certificate profile's TLS context, built from the files it deploys.
struct Served {
    std::string profile;
    std::shared_ptr<asio::ssl::context> context;
    std::vector<std::string> dns_names;  // lower case
    TimePoint not_after;
    std::string fingerprint;
};

// What a listener serves: a new handshake takes the newest set; a connection keeps its own.
struct ServedSet {
    std::vector<Served> certificates;  // [0]: when SNI names none of the others
};

struct Listener {
    GatewayListenerConfig config;
    // The security profile's trust anchors: the CA names a CertificateRequest lists, so clients
    // holding several certificates pick one of the right CA. A hint only; the module decides.
    std::vector<std::filesystem::path> client_cas;
    asio::strand<asio::io_context::executor_type> strand;
    tcp::acceptor acceptor;
    std::atomic<std::shared_ptr<const ServedSet>> served;
    // The broker's addresses, resolved once at start: not a lookup per client.
    tcp::resolver::results_type upstream;
    int port = 0;
    Listener(GatewayListenerConfig c, asio::io_context& io)
        : config(std::move(c)), strand(asio::make_strand(io)), acceptor(strand) {}
};

int on_servername(SSL* ssl, int*, void* arg) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_NOACK;
    std::string host = lower(name);
    auto set = static_cast<Listener*>(arg)->served.load();
    for (const auto& served : set->certificates)
        for (const auto& pattern : served.dns_names)
            if (name_matches(pattern, host)) {
                // Counted references: the connection keeps this context however the set changes.
                SSL_set_SSL_CTX(ssl, served.context->native_handle());
                return SSL_TLSEXT_ERR_OK;
            }
    return SSL_TLSEXT_ERR_NOACK;
}

int on_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
            unsigned int in_length, void* arg) {
    for (const auto& wanted : static_cast<Listener*>(arg)->config.alpn)
        for (unsigned int i = 0; i < in_length;) {
            unsigned int length = in[i];
            if (i + 1 + length > in_length) break;
            if (length == wanted.size() && std::memcmp(in + i + 1, wanted.data(), length) == 0) {
                *out = in + i + 1;
                *out_length = static_cast<unsigned char>(length);
                return SSL_TLSEXT_ERR_OK;
            }
            i += 1 + length;
        }
    return SSL_TLSEXT_ERR_NOACK;  // no protocol both know: the handshake goes on without
}

Served load_served(const CertificateProfileConfig& profile, Listener& listener) {
    Served s;
    s.profile = profile.name;
    s.context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    SSL_CTX* ctx = s.context->native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // No resumption: every connection's certificate is validated anew by the module.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    // OpenSSL's record buffers are given back while a connection is idle: most MQTT
    // connections are, most of the time.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    std::string where = "certificate profile '" + profile.name + "'";
    if (SSL_CTX_use_certificate_chain_file(ctx, profile.deploy_cert.c_str()) != 1)
        fail(ErrorKind::Input, where, profile.deploy_cert.string() + ": " + openssl_reason());
    if (SSL_CTX_use_PrivateKey_file(ctx, profile.deploy_key.c_str(), SSL_FILETYPE_PEM) != 1)
        fail(ErrorKind::Input, where, profile.deploy_key.string() + ": " + openssl_reason());
    if (SSL_CTX_check_private_key(ctx) != 1)
        fail(ErrorKind::Input, where, "the key does not match the certificate");
    if (!listener.config.security_profile.empty()) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_chain);
        STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
        for (const auto& anchors : listener.client_cas) {
            if (std::filesystem::is_directory(anchors))
                SSL_add_dir_cert_subjects_to_stack(names, anchors.c_str());
            else
                SSL_add_file_cert_subjects_to_stack(names, anchors.c_str());
        }
        ERR_clear_error();  // a file that is no certificate: fewer names in the hint
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, &listener);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, &listener);
    Certificate leaf = std::move(Certificate::load_chain(profile.deploy_cert).front());
    for (const auto& name : leaf.subject_alt_names())
        if (name.type == SubjectAltName::Type::Dns) s.dns_names.push_back(lower(name.value));
    s.not_after = leaf.not_after();
    s.fingerprint = leaf.fingerprint_sha256();
    return s;
}

std::string iso_time(TimePoint t) {
    std::time_t seconds = SystemClock::to_time_t(t);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&seconds));
    return text;
}

class Connection;

}  // namespace

struct Gateway::Impl {
    Impl(const Config& config, SecurityModule& module, Log log);

    // What a Connection's destructor uses is declared before `io`, so it outlives the handlers
    // io's destructor destroys; the I/O objects come after `io`, so they go first.
    GatewayConfig config;
    std::map<std::string, CertificateProfileConfig> certificate_profiles;
    SecurityModule& module;
    Log log;

    // SecurityModule's connection bookkeeping and tick() are for one thread at a time (the
    // broker thread of the plugin); here every worker authenticates.
    std::mutex module_mutex;

    std::mutex connections_mutex;
    std::condition_variable connections_changed;
    std::map<std::string, std::weak_ptr<Connection>> connections;
    std::map<std::string, int> per_address;
    unsigned long next_id = 0;

    struct Counters {
        std::atomic<unsigned long> accepted{0}, handshakes_ok{0}, handshakes_failed{0}, relayed{0},
            kicked{0}, bytes_from_clients{0}, bytes_to_clients{0};
        std::mutex mutex;
        std::map<std::string, unsigned long> refused;  // by reason
    } counters;

    // Set by the module's watcher (new certificates deployed) and by SIGHUP; the control
    // strand acts on them at its next tick.
    std::shared_ptr<std::atomic<bool>> certificates_changed = std::make_shared<std::atomic<bool>>();
    std::atomic<bool> reload_requested{false};
    std::atomic<bool> stopping{false};

    asio::io_context io;
    std::vector<std::unique_ptr<Listener>> listeners;
    asio::strand<asio::io_context::executor_type> control = asio::make_strand(io);
    asio::steady_timer tick_timer{control};
    std::optional<tcp::acceptor> status;
    int status_port = -1;
    std::vector<std::thread> threads;

    void refuse(const std::string& reason) {
        std::lock_guard lock(counters.mutex);
        ++counters.refused[reason];
    }
    void rebuild_served();
    void apply(const SecurityModule::Outcome& outcome);
    void control_step();
    void admit(Listener& listener, tcp::socket socket);
    void forget(const std::string& key, const std::string& address);
    void close_all(const std::vector<std::string>& keys);
    std::string status_json();
    asio::awaitable<void> accept_loop(Listener& listener);
    asio::awaitable<void> control_loop();
    asio::awaitable<void> status_loop();
    asio::awaitable<void> serve_status(tcp::socket socket);
};

namespace {

// One client: TLS handshake, validation, the first packet, the broker, then both directions.
class Connection : public std::enable_shared_from_this<Connection> {
  public:
    Connection(Gateway::Impl& gateway, Listener& listener, tcp::socket socket, std::string key,
               std::string address)
        : gateway_(gateway),
          listener_(listener),
          served_(listener.served.load()),
          client_(std::move(socket), *served_->certificates.front().context),
          upstream_(client_.get_executor()),
          deadline_(client_.get_executor()),
          key_(std::move(key)),
          address_(std::move(address)) {}
    ~Connection() {
        {
            std::lock_guard lock(gateway_.module_mutex);
            gateway_.module.disconnected(key_, this);
        }
        gateway_.forget(key_, address_);
    }

    asio::any_io_executor executor() { return client_.get_executor(); }
    const std::string& address() const { return address_; }

    asio::awaitable<void> run() {
        auto self = shared_from_this();
        try {
            if (co_await prepare()) {
                ++gateway_.counters.relayed;
                asio::co_spawn(executor(), relay_to_client(), asio::detached);
                co_await relay_to_broker();
            }
        } catch (const std::exception& e) {
            gateway_.log("connection " + key_ + " from " + address_ + ": " + printable(e.what()));
        }
        close();
    }

    // On the connection's strand.
    void close() {
        boost::system::error_code ignored;
        client_.next_layer().close(ignored);
        upstream_.close(ignored);
        deadline_.cancel();
    }

  private:
    // A timer that expires as the awaited operation completes may already have its handler
    // queued, where cancel() no longer reaches it: the generation tells it that it is stale.
    void arm(std::chrono::milliseconds timeout) {
        timed_out_ = false;
        unsigned generation = ++deadline_generation_;
        deadline_.expires_after(timeout);
        deadline_.async_wait([weak = weak_from_this(), generation](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self || self->deadline_generation_ != generation) return;
            self->timed_out_ = true;
            self->close();
        });
    }
    void disarm() {
        ++deadline_generation_;
        deadline_.cancel();
    }

    std::string who() const {
        return "client " + key_ + " from " + address_ + " on " + listener_.config.name;
    }

    // True when the client may go on to the broker, with what the broker is sent first.
    asio::awaitable<bool> prepare() {
        const auto& limits = gateway_.config.limits;
        const auto& config = listener_.config;
        arm(limits.handshake_timeout);
        auto [handshake] =
            co_await client_.async_handshake(asio::ssl::stream_base::server, as_tuple);
        disarm();
        if (handshake) {
            ++gateway_.counters.handshakes_failed;
            if (timed_out_) gateway_.refuse("handshake_timeout");
            co_return false;
        }
        ++gateway_.counters.handshakes_ok;

        std::optional<std::string> identity;
        if (!config.security_profile.empty()) {
            X509* leaf = SSL_get0_peer_certificate(client_.native_handle());
            std::lock_guard lock(gateway_.module_mutex);
            if (leaf || gateway_.module.requires_client_certificate(config.security_profile)) {
                auto r = gateway_.module.authenticate_connection(config.security_profile, leaf,
                                                                 key_, this, SystemClock::now());
                if (!r.ok()) {
                    std::string reason(reject_reason_name(r.reason));
                    gateway_.refuse(reason);
                    gateway_.log("rejected " + who() + " (subject '" + printable(r.subject) +
                                 "', sha256 " + (r.fingerprint.empty() ? "-" : r.fingerprint) +
                                 "): " + reason + ": " + printable(r.detail));
                    co_return false;
                }
                identity = r.identity;
                gateway_.log("accepted " + who() + " as '" + printable(r.identity) + "' (sha256 " +
                             r.fingerprint + ")");
            }
        }

        std::string first;  // what the broker gets before the relay starts
        if (config.identity == Identity::ConnectRewrite) {
            auto packet = co_await read_connect();
            if (!packet) co_return false;
            bool must_match =
                identity &&
                config.client_id_must_match.value_or(
                    gateway_.module.client_id_must_match_identity(config.security_profile));
            auto out = mqtt::rewrite_connect(
                std::string_view(pending_).substr(0, *packet),
                {identity, config.pass_password,
                 must_match ? identity : std::optional<std::string>(), limits.max_connect_size});
            if (out.problem) {
                gateway_.refuse(must_match && out.problem->starts_with("the client id")
                                    ? "client_id_mismatch"
                                    : "bad_connect");
                gateway_.log("refused the CONNECT of " + who() + ": " + printable(*out.problem));
                co_return false;
            }
            first = std::move(out.packet);
            pending_.erase(0, *packet);  // what the client sent after its CONNECT
        }

        arm(limits.handshake_timeout);
        auto [connect_error, endpoint] =
            co_await asio::async_connect(upstream_, listener_.upstream, as_tuple);
        disarm();
        if (connect_error) {
            gateway_.refuse("upstream");
            gateway_.log("cannot reach the broker at " + config.upstream + " for " + who() + ": " +
                         (timed_out_ ? "timed out" : connect_error.message()));
            co_return false;
        }
        upstream_.set_option(tcp::no_delay(true));
        client_.next_layer().set_option(tcp::no_delay(true));
        if (config.identity == Identity::ProxyV2) {
            SSL* ssl = client_.native_handle();
            auto remote = client_.next_layer().remote_endpoint();
            auto local = client_.next_layer().local_endpoint();
            first = proxy_v2::header(
                remote.data(), local.data(),
                {SSL_get_version(ssl), SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)), identity});
        }
        first += pending_;
        pending_.clear();
        if (!first.empty())
            co_await asio::async_write(upstream_, asio::buffer(first), asio::use_awaitable);
        co_return true;
    }

    // Reads the client's first packet into pending_, within first_packet_timeout and
    // max_connect_size; its size, or nullopt when the client is refused.
    asio::awaitable<std::optional<std::size_t>> read_connect() {
        const auto& limits = gateway_.config.limits;
        arm(limits.first_packet_timeout);
        std::array<char, 4096> chunk;
        while (true) {
            auto size = mqtt::connect_packet_size(pending_, limits.max_connect_size);
            if (size.problem) {
                disarm();
                gateway_.refuse("bad_connect");
                gateway_.log("refused the first packet of " + who() + ": " +
                             printable(*size.problem));
                co_return std::nullopt;
            }
            if (size.size && pending_.size() >= size.size) {
                disarm();
                co_return size.size;
            }
            auto [ec, n] = co_await client_.async_read_some(asio::buffer(chunk), as_tuple);
            if (ec) {
                disarm();
                if (timed_out_) {
                    gateway_.refuse("first_packet_timeout");
                    gateway_.log("refused " + who() +
                                 ": no CONNECT within the first_packet_timeout");
                }
                co_return std::nullopt;
            }
            pending_.append(chunk.data(), n);
        }
    }

    asio::awaitable<void> relay_to_broker() {
        auto self = shared_from_this();
        try {
            while (true) {
                std::size_t n =
                    co_await client_.async_read_some(asio::buffer(up_), asio::use_awaitable);
                co_await asio::async_write(upstream_, asio::buffer(up_.data(), n),
                                           asio::use_awaitable);
                gateway_.counters.bytes_from_clients += n;
            }
        } catch (const boost::system::system_error&) {
            // The client or the broker closed, or a kick: either way both ends go.
        }
        close();
    }

    asio::awaitable<void> relay_to_client() {
        auto self = shared_from_this();
        try {
            while (true) {
                // The buffer exists only while the broker has something to say: an idle
                // connection holds none.
                co_await upstream_.async_wait(tcp::socket::wait_read, asio::use_awaitable);
                std::vector<char> down(kRelayBuffer);
                std::size_t n =
                    co_await upstream_.async_read_some(asio::buffer(down), asio::use_awaitable);
                co_await asio::async_write(client_, asio::buffer(down.data(), n),
                                           asio::use_awaitable);
                gateway_.counters.bytes_to_clients += n;
            }
        } catch (const boost::system::system_error&) {
        }
        close();
    }

    Gateway::Impl& gateway_;
    Listener& listener_;
    std::shared_ptr<const ServedSet> served_;  // the contexts this connection started with
    asio::ssl::stream<tcp::socket> client_;
    tcp::socket upstream_;
    asio::steady_timer deadline_;
    bool timed_out_ = false;
    unsigned deadline_generation_ = 0;
    std::string key_, address_;
    std::string pending_;                  // client bytes read before the relay
    std::array<char, kRelayBuffer> up_{};  // the client's side; the broker's is made per read
};

void report_failure(Gateway::Log& log, const char* what, std::exception_ptr error) {
    if (!error) return;
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        log(std::string(what) + " stopped: " + printable(e.what()));
    }
}

}  // namespace

Gateway::Impl::Impl(const Config& cfg, SecurityModule& m, Log l)
    : config(*cfg.gateway),
      certificate_profiles(cfg.certificate_profiles),
      module(m),
      log(std::move(l)) {
    for (const auto& lc : config.listeners) {
        auto listener = std::make_unique<Listener>(lc, io);
        if (auto p = cfg.security_profiles.find(lc.security_profile);
            p != cfg.security_profiles.end())
            listener->client_cas = p->second.trust_anchors;
        {
            auto [host, port] = split_endpoint(lc.upstream);
            boost::system::error_code ec;
            listener->upstream = tcp::resolver(io).resolve(host, port, ec);
            if (ec)
                fail(ErrorKind::Input, "listener " + lc.name,
                     "upstream " + lc.upstream + ": " + ec.message());
        }
        auto [host, port] = split_endpoint(lc.listen);
        boost::system::error_code ec;
        tcp::endpoint endpoint(asio::ip::make_address(host, ec),
                               static_cast<unsigned short>(std::stoi(port)));
        if (ec) fail(ErrorKind::Input, "listener " + lc.name, "not an IP address: " + host);
        auto& a = listener->acceptor;
        a.open(endpoint.protocol());
        a.set_option(tcp::acceptor::reuse_address(true));
        a.bind(endpoint, ec);
        if (ec)
            fail(ErrorKind::Io, "listener " + lc.name,
                 "cannot listen on " + lc.listen + ": " + ec.message());
        a.listen(asio::socket_base::max_listen_connections);
        listener->port = a.local_endpoint().port();
        listeners.push_back(std::move(listener));
    }
    // Built once the listeners have their final addresses (the SSL callbacks point at them).
    for (auto& listener : listeners) {
        auto set = std::make_shared<ServedSet>();
        for (const auto& name : listener->config.certificates)
            set->certificates.push_back(load_served(certificate_profiles.at(name), *listener));
        listener->served.store(std::move(set));
    }
    if (!config.status_listen.empty()) {
        auto [host, port] = split_endpoint(config.status_listen);
        boost::system::error_code ec;
        tcp::endpoint endpoint(asio::ip::make_address(host, ec),
                               static_cast<unsigned short>(std::stoi(port)));
        if (ec) fail(ErrorKind::Input, "status", "not an IP address: " + host);
        status.emplace(control);
        status->open(endpoint.protocol());
        status->set_option(tcp::acceptor::reuse_address(true));
        status->bind(endpoint, ec);
        if (ec)
            fail(ErrorKind::Io, "status",
                 "cannot listen on " + config.status_listen + ": " + ec.message());
        status->listen();
        status_port = status->local_endpoint().port();
    }
}

void Gateway::Impl::rebuild_served() {
    for (auto& listener : listeners) {
        auto previous = listener->served.load();
        auto set = std::make_shared<ServedSet>();
        for (std::size_t i = 0; i < listener->config.certificates.size(); ++i) {
            const auto& name = listener->config.certificates[i];
            try {
                set->certificates.push_back(load_served(certificate_profiles.at(name), *listener));
            } catch (const std::exception& e) {
                // Half-written files are retried at the next reload; meanwhile the previous
                // certificate is served.
                log("listener " + listener->config.name + ": " + printable(e.what()) +
                    "; the previous certificate stays");
                set->certificates.push_back(previous->certificates[i]);
            }
        }
        for (std::size_t i = 0; i < set->certificates.size(); ++i)
            if (set->certificates[i].fingerprint != previous->certificates[i].fingerprint)
                log("listener " + listener->config.name + ": certificate profile '" +
                    set->certificates[i].profile + "' now serves sha256 " +
                    set->certificates[i].fingerprint);
        listener->served.store(std::move(set));
    }
}

void Gateway::Impl::apply(const SecurityModule::Outcome& outcome) {
    for (const auto& line : outcome.log) log(printable(line));
    close_all(outcome.kick);
    counters.kicked += outcome.kick.size();
}

void Gateway::Impl::close_all(const std::vector<std::string>& keys) {
    // Released outside the lock: the last reference runs ~Connection, which takes it.
    std::vector<std::shared_ptr<Connection>> live;
    {
        std::lock_guard lock(connections_mutex);
        for (const auto& key : keys)
            if (auto it = connections.find(key); it != connections.end())
                if (auto c = it->second.lock()) live.push_back(std::move(c));
    }
    for (auto& c : live) asio::post(c->executor(), [c] { c->close(); });
}

void Gateway::Impl::control_step() {
    bool certificates = certificates_changed->exchange(false);
    bool sighup = reload_requested.exchange(false);
    if (certificates || sighup) rebuild_served();
    SecurityModule::Outcome outcome;
    {
        std::lock_guard lock(module_mutex);
        auto now = SystemClock::now();
        if (certificates || sighup) {
            module.broker_reloaded(now);
            outcome = module.reload(now);
        } else {
            outcome = module.tick(now);
        }
    }
    apply(outcome);
}

asio::awaitable<void> Gateway::Impl::control_loop() {
    while (!stopping) {
        tick_timer.expires_after(kTickInterval);
        auto [ec] = co_await tick_timer.async_wait(as_tuple);
        if (ec || stopping) break;
        try {
            control_step();
        } catch (const std::exception& e) {
            log(printable(e.what()));
        }
    }
}

void Gateway::Impl::admit(Listener& listener, tcp::socket socket) {
    boost::system::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (ec) return;
    std::string address = remote.address().to_string();
    std::shared_ptr<Connection> connection;
    {
        std::lock_guard lock(connections_mutex);
        const char* refused = nullptr;
        if (connections.size() >= static_cast<std::size_t>(config.limits.max_connections))
            refused = "max_connections";
        else if (per_address[address] >= config.limits.per_address)
            refused = "per_address";
        if (refused) {
            if (per_address[address] == 0) per_address.erase(address);
            refuse(refused);
            return;  // the socket closes here
        }
        std::string key = "gw-" + std::to_string(++next_id);
        connection = std::make_shared<Connection>(*this, listener, std::move(socket), key,
                                                  address + ":" + std::to_string(remote.port()));
        connections.emplace(key, connection);
        ++per_address[address];
    }
    ++counters.accepted;
    asio::co_spawn(connection->executor(), connection->run(),
                   [this](std::exception_ptr e) { report_failure(log, "a connection", e); });
}

void Gateway::Impl::forget(const std::string& key, const std::string& address) {
    std::string host = address.substr(0, address.rfind(':'));
    std::lock_guard lock(connections_mutex);
    connections.erase(key);
    if (auto it = per_address.find(host); it != per_address.end() && --it->second <= 0)
        per_address.erase(it);
    connections_changed.notify_all();
}

asio::awaitable<void> Gateway::Impl::accept_loop(Listener& listener) {
    while (!stopping) {
        auto [ec, socket] =
            co_await listener.acceptor.async_accept(asio::make_strand(io), as_tuple);
        if (stopping || ec == asio::error::operation_aborted) break;
        if (ec) {
            // Out of file descriptors, most likely: wait instead of spinning.
            log("listener " + listener.config.name + ": accept failed: " + ec.message());
            asio::steady_timer pause(listener.strand, std::chrono::milliseconds(100));
            co_await pause.async_wait(as_tuple);
            continue;
        }
        admit(listener, std::move(socket));
    }
}

std::string Gateway::Impl::status_json() {
    nlohmann::json doc;
    auto now = SystemClock::now();
    {
        std::lock_guard lock(module_mutex);
        doc["module"] = nlohmann::json::parse(module.status_json(now));
    }
    auto& g = doc["gateway"];
    {
        std::lock_guard lock(connections_mutex);
        g["connections_open"] = connections.size();
    }
    g["connections_accepted"] = counters.accepted.load();
    g["handshakes"] = {{"ok", counters.handshakes_ok.load()},
                       {"failed", counters.handshakes_failed.load()}};
    g["relayed"] = counters.relayed.load();
    g["kicked"] = counters.kicked.load();
    g["bytes"] = {{"from_clients", counters.bytes_from_clients.load()},
                  {"to_clients", counters.bytes_to_clients.load()}};
    {
        std::lock_guard lock(counters.mutex);
        g["refused"] = nlohmann::json::object();
        for (const auto& [reason, n] : counters.refused) g["refused"][reason] = n;
    }
    g["listeners"] = nlohmann::json::array();
    for (const auto& listener : listeners) {
        nlohmann::json l = {{"name", listener->config.name}, {"port", listener->port}};
        l["certificates"] = nlohmann::json::array();
        for (const auto& s : listener->served.load()->certificates)
            l["certificates"].push_back({{"profile", s.profile},
                                         {"sha256", s.fingerprint},
                                         {"not_after", iso_time(s.not_after)}});
        g["listeners"].push_back(std::move(l));
    }
    return doc.dump(2);
}

asio::awaitable<void> Gateway::Impl::status_loop() {
    while (!stopping) {
        auto [ec, socket] = co_await status->async_accept(asio::make_strand(io), as_tuple);
        if (stopping || ec == asio::error::operation_aborted) break;
        if (ec) continue;
        auto executor = socket.get_executor();
        asio::co_spawn(executor, serve_status(std::move(socket)),
                       [this](std::exception_ptr e) { report_failure(log, "status", e); });
    }
}

asio::awaitable<void> Gateway::Impl::serve_status(tcp::socket accepted) {
    // Shared with the deadline's handler, which may run after this coroutine has ended.
    auto socket = std::make_shared<tcp::socket>(std::move(accepted));
    asio::steady_timer deadline(socket->get_executor(), kStatusTimeout);
    deadline.async_wait([weak = std::weak_ptr<tcp::socket>(socket)](boost::system::error_code ec) {
        boost::system::error_code ignored;
        if (auto s = weak.lock(); s && !ec) s->close(ignored);
    });
    std::string request;
    auto [ec, n] = co_await asio::async_read_until(
        *socket, asio::dynamic_buffer(request, kMaxStatusRequest), "\r\n\r\n", as_tuple);
    if (ec) co_return;
    std::string code = "404 Not Found", body = "{\"error\": \"not found\"}\n";
    if (request.starts_with("GET /status ")) {
        code = "200 OK";
        body = status_json() + "\n";
    }
    std::string response =
        "HTTP/1.1 " + code +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    co_await asio::async_write(*socket, asio::buffer(response), as_tuple);
    boost::system::error_code ignored;
    socket->shutdown(tcp::socket::shutdown_both, ignored);
}

Gateway::Gateway(const Config& config, SecurityModule& module, Log log)
    : impl_(std::make_unique<Impl>(config, module, std::move(log))) {}

Gateway::~Gateway() {
    stop();
}

int Gateway::port(std::size_t listener) const {
    return impl_->listeners.at(listener)->port;
}

int Gateway::status_port() const {
    return impl_->status_port;
}

void Gateway::start() {
    auto& g = *impl_;
    g.module.start_watching([flag = g.certificates_changed] {
        flag->store(true);
        return true;
    });
    auto failed = [&g](const char* what) {
        return [&g, what](std::exception_ptr e) { report_failure(g.log, what, e); };
    };
    for (auto& listener : g.listeners)
        asio::co_spawn(listener->strand, g.accept_loop(*listener), failed("a listener"));
    if (g.status) asio::co_spawn(g.control, g.status_loop(), failed("the status endpoint"));
    asio::co_spawn(g.control, g.control_loop(), failed("the control loop"));
    for (int i = 0; i < g.config.workers; ++i) g.threads.emplace_back([&g] { g.io.run(); });
}

void Gateway::reload() {
    impl_->reload_requested = true;
}

void Gateway::stop() {
    auto& g = *impl_;
    if (g.threads.empty() || g.stopping.exchange(true)) return;
    for (auto& listener : g.listeners)
        asio::post(listener->strand, [l = listener.get()] {
            boost::system::error_code ignored;
            l->acceptor.close(ignored);
        });
    asio::post(g.control, [&g] {
        boost::system::error_code ignored;
        if (g.status) g.status->close(ignored);
        g.tick_timer.cancel();
    });
    std::unique_lock lock(g.connections_mutex);
    if (!g.connections.empty())
        g.log("draining " + std::to_string(g.connections.size()) + " connections (up to " +
              std::to_string(g.config.drain_timeout.count()) + " ms)");
    if (!g.connections_changed.wait_for(lock, g.config.drain_timeout,
                                        [&g] { return g.connections.empty(); })) {
        std::vector<std::string> keys;
        for (const auto& [key, c] : g.connections) keys.push_back(key);
        g.log("closing " + std::to_string(keys.size()) + " connections still open");
        lock.unlock();
        g.close_all(keys);
        lock.lock();
        g.connections_changed.wait_for(lock, kCloseWait, [&g] { return g.connections.empty(); });
    }
    lock.unlock();
    g.io.stop();
    for (auto& t : g.threads) t.join();
    g.threads.clear();
}

}  // namespace brokertls
