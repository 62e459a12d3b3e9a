// HttpServer: Boost.Beast HTTP/1.1 over Boost.Asio; TLS by OpenSSL (contexts as asio::ssl::context,
// the record layer on the socket itself, see TlsStream).
//
// Design
//  - One io_context run by `threads` threads. Every connection lives on its own strand, so its
//    handlers never run concurrently and it needs no lock; the only locks guard what connections
//    share (per-listener connection counts, the TLS context, the log, the shutdown gate).
//  - A connection is a state machine (handshake, head, body, handler, write, idle, closing) with
//    one steady_timer whose deadline depends on the state: header_timeout from accept (or from
//    the first byte of a keep-alive request) to the end of the head, TLS handshake included;
//    body_timeout for the body; response_timeout for the handler and the write (503 when the
//    handler is late); idle_timeout between keep-alive requests. When the timer fires the socket
//    is closed, which ends whatever operation is pending.
//  - Memory per idle connection: between requests the parser and the response are destroyed, the
//    read buffer shrinks to the 512 bytes of the pending read, and OpenSSL frees its record
//    buffers (SSL_MODE_RELEASE_BUFFERS). Measured with 2,000 idle keep-alive connections: about
//    2.5 KiB each for plain HTTP, 15-17 KiB for TLS (the SSL object and its session).
//  - Lifetime: connections are owned by the handlers pending on them (shared_ptr); a Respond holds
//    a weak_ptr and the server's Gate. The destructor closes the gate (no Respond touches the
//    io_context afterwards), stops and joins the threads, then destroys the io_context, which
//    destroys the pending handlers and so every connection.
//  - TLS contexts are shared_ptrs: a connection keeps the one it was accepted with, reload_tls()
//    swaps in a new one for later connections.

// GCC 12 refuses (-Wtsan, an error with -Werror) the std::atomic_thread_fence of Asio's headers
// in ThreadSanitizer builds, as TSan does not model fences. Asio orders its handlers with
// mutexes as well, so TSan still sees them ordered. Before every include: the warning is issued
// at the fence's location in <atomic>, which the first standard header pulls in.
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include "service/http_server.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/compose.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>

#include "brokertls/error.hpp"

namespace brokertls {

std::optional<std::string_view> ServerRequest::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return std::string_view(v);
    return std::nullopt;
}

std::string_view ServerRequest::path() const {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Counters {
    std::atomic<std::size_t> open{0}, accepted{0}, refused{0}, handshake_failures{0}, timeouts{0},
        requests{0};
};

// Serialises the caller's log function (it is called from every server thread) and limits
// floods: a kind of event that can repeat at line rate is logged at most once a second.
class Log {
  public:
    enum Kind { OverLimit, OverLimitPerAddress, AcceptError, HandlerError, Kinds };

    explicit Log(std::function<void(const std::string&)> sink) : sink_(std::move(sink)) {}

    void line(const std::string& text) {
        std::lock_guard lock(mutex_);
        if (sink_) sink_(text);
    }

    void limited(Kind kind, std::string text) {
        std::lock_guard lock(mutex_);
        auto now = Clock::now();
        auto& last = last_[kind];
        if (last && now - *last < std::chrono::seconds(1)) {
            ++suppressed_[kind];
            return;
        }
        last = now;
        if (suppressed_[kind])
            text += " (" + std::to_string(suppressed_[kind]) + " more since the last such line)";
        suppressed_[kind] = 0;
        if (sink_) sink_(text);
    }

  private:
    std::mutex mutex_;
    std::function<void(const std::string&)> sink_;
    std::array<std::optional<Clock::time_point>, Kinds> last_{};
    std::array<std::size_t, Kinds> suppressed_{};
};

// Closed by the server's destructor before the io_context goes: a Respond called afterwards
// (or concurrently) must not post to it.
struct Gate {
    std::mutex mutex;
    bool open = true;
};

struct Listener {
    Listener(HttpListenerConfig c, Counters& shared_counters, Log& shared_log)
        : config(std::move(c)), counters(shared_counters), log(shared_log) {}

    std::shared_ptr<ssl::context> tls_context() {
        std::lock_guard lock(tls_mutex);
        return tls;
    }

    HttpListenerConfig config;
    Counters& counters;
    Log& log;
    unsigned short port = 0;

    std::mutex tls_mutex;
    std::shared_ptr<ssl::context> tls;  // null: plain HTTP

    std::mutex count_mutex;  // open and per_address, for max_connections(_per_address)
    std::size_t open = 0;
    std::map<std::string, std::size_t> per_address;
};

std::shared_ptr<ssl::context> make_tls_context(const HttpListenerConfig& config) {
    const HttpTlsConfig& tls = *config.tls;
    std::string where = "listener " + config.name + ": ";
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* c = ctx->native_handle();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // A client may close without close_notify: every message is delimited, so that is EOF.
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_use_certificate_chain_file(c, tls.cert.c_str()) != 1)
        fail(ErrorKind::Input, where + tls.cert.string(), openssl_reason());
    if (SSL_CTX_use_PrivateKey_file(c, tls.key.c_str(), SSL_FILETYPE_PEM) != 1)
        fail(ErrorKind::Input, where + tls.key.string(), openssl_reason());
    if (SSL_CTX_check_private_key(c) != 1)
        fail(ErrorKind::Input, where + tls.key.string(),
             "does not match the certificate " + tls.cert.string());
    if (tls.client_ca) {
        const std::string ca = tls.client_ca->string();
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
        if (!names || SSL_CTX_load_verify_locations(c, ca.c_str(), nullptr) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            fail(ErrorKind::Input, where + ca, openssl_reason());
        }
        // Tells clients which CA to pick a certificate for.
        SSL_CTX_set_client_CA_list(c, names);
        // Ask for a certificate but accept none: the handler decides which endpoints need one.
        // A certificate that is presented and does not verify still fails the handshake.
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
        // Without a session id context OpenSSL refuses to resume sessions of verified clients.
        static const unsigned char kSessionContext[] = "brokertls-service";
        SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);
    }
    return ctx;
}

// "192.0.2.1", "2001:db8::1"; an IPv4-mapped IPv6 address as IPv4 (a dual-stack listener sees
// IPv4 clients so, and per-address limits must count them as one address).
std::string address_text(const asio::ip::address& address) {
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
    return address.to_string();
}

// A token (RFC 9110) for names; no CR, LF or NUL in values (response splitting).
bool valid_header(std::string_view name, std::string_view value) {
    static constexpr std::string_view kTokenPunctuation = "!#$%&'*+-.^_`|~";
    if (name.empty()) return false;
    for (unsigned char ch : name)
        if (!std::isalnum(ch) && kTokenPunctuation.find(static_cast<char>(ch)) == std::string::npos)
            return false;
    return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

ServerResponse error_response(int status, std::string_view text) {
    return {status, {{"Content-Type", "text/plain"}}, std::string(text) + "\n"};
}

// TLS on a socket for Beast (an AsyncReadStream and AsyncWriteStream). OpenSSL reads and writes
// the socket itself (SSL_set_fd) and Asio only waits for readiness. asio::ssl::stream would
// stage every byte through two 17 KiB buffers of its own and a BIO pair of two more, about
// 70 KiB per connection even when idle; this way an idle connection keeps the SSL object, whose
// record buffers SSL_MODE_RELEASE_BUFFERS frees between records.
// A connection never reads and writes at the same time, so one operation runs at a time.
class TlsStream {
  public:
    using executor_type = asio::any_io_executor;

    TlsStream(tcp::socket& socket, SSL_CTX* context) : socket_(socket), ssl_(SSL_new(context)) {}
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;
    ~TlsStream() { SSL_free(ssl_); }  // leaves the socket open (SSL_set_fd does not own it)

    // False when OpenSSL cannot take the socket (out of memory).
    bool attach() {
        beast::error_code ec;
        socket_.non_blocking(true, ec);
        if (!ssl_ || ec || SSL_set_fd(ssl_, socket_.native_handle()) != 1) return false;
        SSL_set_accept_state(ssl_);
        return true;
    }

    executor_type get_executor() { return socket_.get_executor(); }
    SSL* native_handle() { return ssl_; }

    template <class Handler>
    auto async_handshake(Handler&& handler) {
        return start(
            [](SSL* ssl, std::size_t& n) {
                n = 0;
                return SSL_do_handshake(ssl);
            },
            std::forward<Handler>(handler));
    }

    template <class Buffers, class Handler>
    auto async_read_some(const Buffers& buffers, Handler&& handler) {
        asio::mutable_buffer b = first_nonempty(buffers);
        return start(
            [b](SSL* ssl, std::size_t& n) {
                n = 0;  // nothing to read is done at once, as for Asio's streams
                return b.size() == 0 ? 1 : SSL_read_ex(ssl, b.data(), b.size(), &n);
            },
            std::forward<Handler>(handler));
    }

    // Beast writes a response as a header and a body: joined here (up to a TLS record), they
    // go out as one record in one send instead of two.
    template <class Buffers, class Handler>
    auto async_write_some(const Buffers& buffers, Handler&& handler) {
        std::string joined(std::min<std::size_t>(asio::buffer_size(buffers), 16 * 1024), '\0');
        asio::buffer_copy(asio::buffer(joined), buffers);
        // The string moves with the operation: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows that.
        return start(
            [data = std::move(joined)](SSL* ssl, std::size_t& n) {
                n = 0;
                return data.empty() ? 1 : SSL_write_ex(ssl, data.data(), data.size(), &n);
            },
            std::forward<Handler>(handler));
    }

  private:
    // Beast reads into one buffer: the first non-empty one is enough for a *_some operation.
    template <class Buffers>
    static asio::mutable_buffer first_nonempty(const Buffers& buffers) {
        for (auto it = asio::buffer_sequence_begin(buffers);
             it != asio::buffer_sequence_end(buffers); ++it)
            if (asio::mutable_buffer b(*it); b.size() > 0) return b;
        return {};
    }

    // Calls `step` until OpenSSL stops asking for readiness, waiting for it on the socket.
    template <class Step>
    struct Operation {
        TlsStream& stream;
        Step step;
        bool waited = false;
        std::optional<std::pair<beast::error_code, std::size_t>> result;

        template <class Self>
        void operator()(Self& self, beast::error_code wait_error = {}) {
            if (!result) {
                if (wait_error) {
                    result.emplace(wait_error, 0);
                } else {
                    std::size_t n = 0;
                    ERR_clear_error();  // SSL_get_error judges the error queue of this thread
                    int ret = step(stream.ssl_, n);
                    int error = ret == 1 ? SSL_ERROR_NONE : SSL_get_error(stream.ssl_, ret);
                    int system_error = errno;
                    switch (error) {
                        case SSL_ERROR_NONE:
                            result.emplace(beast::error_code(), n);
                            break;
                        case SSL_ERROR_WANT_READ:
                        case SSL_ERROR_WANT_WRITE:
                            waited = true;
                            return stream.socket_.async_wait(error == SSL_ERROR_WANT_READ
                                                                 ? tcp::socket::wait_read
                                                                 : tcp::socket::wait_write,
                                                             std::move(self));
                        case SSL_ERROR_ZERO_RETURN:  // also a peer that closed without close_notify
                            result.emplace(asio::error::eof, 0);
                            break;
                        case SSL_ERROR_SYSCALL:
                            result.emplace(system_error
                                               ? beast::error_code(system_error,
                                                                   boost::system::system_category())
                                               : beast::error_code(asio::error::eof),
                                           0);
                            break;
                        default:
                            result.emplace(
                                beast::error_code(error, asio::error::get_ssl_category()), 0);
                    }
                }
            }
            if (waited) return self.complete(result->first, result->second);
            // Asio's rule: a handler never runs inside the call that started its operation.
            waited = true;
            asio::post(stream.get_executor(), std::move(self));
        }
    };

    template <class Step, class Handler>
    auto start(Step step, Handler&& handler) {
        return asio::async_compose<Handler, void(beast::error_code, std::size_t)>(
            Operation<Step>{*this, std::move(step), false, std::nullopt}, handler, socket_);
    }

    tcp::socket& socket_;
    SSL* ssl_;
};

class Connection : public std::enable_shared_from_this<Connection> {
  public:
    Connection(Listener& listener, std::shared_ptr<Gate> gate, tcp::socket socket, std::string peer,
               std::shared_ptr<ssl::context> tls_context)
        : listener_(listener),
          limits_(listener.config.limits),
          gate_(std::move(gate)),
          socket_(std::move(socket)),
          timer_(socket_.get_executor()),
          peer_(std::move(peer)),
          tls_context_(std::move(tls_context)) {
        if (tls_context_) tls_.emplace(socket_, tls_context_->native_handle());
    }

    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    asio::any_io_executor executor() { return socket_.get_executor(); }

    // Runs on whichever thread drops the last handler: only counters and a lock.
    ~Connection() {
        listener_.counters.open.fetch_sub(1);
        std::lock_guard lock(listener_.count_mutex);
        --listener_.open;
        auto it = listener_.per_address.find(peer_);
        if (it != listener_.per_address.end() && --it->second == 0) listener_.per_address.erase(it);
    }

    void start() {
        arm(limits_.header_timeout);
        if (!tls_) return read_head();
        state_ = State::Handshake;
        if (!tls_->attach()) return on_handshake(asio::error::no_memory);
        tls_->async_handshake([self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->on_handshake(ec);
        });
    }

  private:
    enum class State { Handshake, Idle, Head, Body, Handler, Writing, Closing };

    // Both kinds of stream offer the same asynchronous interface.
    template <class F>
    void with_stream(F&& f) {
        if (tls_)
            f(*tls_);
        else
            f(socket_);
    }

    void arm(std::chrono::milliseconds timeout) {
        timer_.expires_after(timeout);
        // A timer that fired just before being re-armed still runs its handler: the
        // generation tells it that its deadline is no longer the current one.
        timer_.async_wait(
            [self = shared_from_this(), generation = ++timer_generation_](beast::error_code ec) {
                if (!ec && generation == self->timer_generation_) self->on_timeout();
            });
    }

    void on_timeout() {
        if (closed_) return;
        if (state_ == State::Closing) return close();
        listener_.counters.timeouts.fetch_add(1);
        if (state_ != State::Handler) return close();
        // The handler is late: its Respond becomes a no-op, the client hears 503. Writing that
        // short answer gets no longer than a request head gets.
        ++request_;
        arm(limits_.header_timeout);
        write(error_response(503, "Service Unavailable"), true);
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        beast::error_code ignored;
        timer_.cancel();
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

    void on_handshake(beast::error_code ec) {
        if (closed_) return;
        if (ec) {
            listener_.counters.handshake_failures.fetch_add(1);
            return close();
        }
        read_head();
    }

    // Between keep-alive requests: wait (idle_timeout) for the first byte with a small buffer,
    // then give the head header_timeout. A pipelined request already buffered skips the wait.
    void read_next() {
        if (buffer_.size() > 0) {
            arm(limits_.header_timeout);
            return read_head();
        }
        state_ = State::Idle;
        buffer_.shrink_to_fit();
        arm(limits_.idle_timeout);
        with_stream([this](auto& stream) {
            stream.async_read_some(buffer_.prepare(512), [self = shared_from_this()](
                                                             beast::error_code ec, std::size_t n) {
                if (self->closed_) return;
                if (ec) return self->close();
                self->buffer_.commit(n);
                self->arm(self->limits_.header_timeout);
                self->read_head();
            });
        });
    }

    void read_head() {
        state_ = State::Head;
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(
            std::min<std::size_t>(limits_.max_header_bytes, UINT32_MAX)));
        parser_->body_limit(limits_.max_body_bytes);
        with_stream([this](auto& stream) {
            http::async_read_header(stream, buffer_, *parser_,
                                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                        self->on_head(ec);
                                    });
        });
    }

    void on_head(beast::error_code ec) {
        if (closed_) return;
        if (ec) return on_read_error(ec);
        if (parser_->is_done()) return dispatch();
        state_ = State::Body;
        arm(limits_.body_timeout);
        auto expect = parser_->get()[http::field::expect];
        if (!iequals(std::string_view(expect.data(), expect.size()), "100-continue"))
            return read_body();
        // Clients that ask wait for this before sending the body (curl: a second).
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        with_stream([this](auto& stream) {
            asio::async_write(stream, asio::buffer(kContinue.data(), kContinue.size()),
                              [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                                  if (self->closed_) return;
                                  if (write_ec) return self->close();
                                  self->read_body();
                              });
        });
    }

    void read_body() {
        with_stream([this](auto& stream) {
            http::async_read(stream, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                 if (self->closed_) return;
                                 if (ec) return self->on_read_error(ec);
                                 self->dispatch();
                             });
        });
    }

    void on_read_error(beast::error_code ec) {
        if (ec == http::error::header_limit)
            return write(error_response(431, "Request Header Fields Too Large"), true);
        if (ec == http::error::body_limit)
            return write(error_response(413, "Content Too Large"), true);
        // A client that went away (also in the middle of a message) needs no answer.
        if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
            ec.category() != http::make_error_code(http::error::bad_method).category())
            return close();
        write(error_response(400, "Bad Request"), true);
    }

    void dispatch() {
        state_ = State::Handler;
        listener_.counters.requests.fetch_add(1);
        auto& message = parser_->get();
        version_ = message.version();
        keep_alive_ = message.keep_alive();
        head_method_ = message.method() == http::verb::head;

        ServerRequest request;
        request.method = std::string(message.method_string());
        request.target = std::string(message.target());
        for (const auto& field : message) {
            std::string name(field.name_string());
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char ch) { return std::tolower(ch); });
            request.headers.emplace_back(std::move(name), std::string(field.value()));
        }
        request.body = std::move(message.body());
        request.peer_address = peer_;
        request.tls = tls_.has_value();
        request.peer_chain = peer_chain();
        parser_.reset();  // its buffers are not needed until the next request

        arm(limits_.response_timeout);
        std::uint64_t id = ++request_;
        try {
            listener_.config.handler(std::move(request), respond_for(id));
        } catch (const std::exception& e) {
            listener_.log.limited(Log::HandlerError,
                                  "listener " + listener_.config.name +
                                      ": the handler failed (answered 500): " + e.what());
            deliver(id, error_response(500, "Internal Server Error"));
        } catch (...) {
            listener_.log.limited(Log::HandlerError, "listener " + listener_.config.name +
                                                         ": the handler failed (answered 500)");
            deliver(id, error_response(500, "Internal Server Error"));
        }
    }

    // The client's verified chain, leaf first. A resumed session has no chain (the client sent
    // no certificates), only the leaf remembered in the session.
    std::vector<Certificate> peer_chain() {
        std::vector<Certificate> chain;
        if (!tls_ || !listener_.config.tls->client_ca) return chain;
        SSL* ssl = tls_->native_handle();
        X509* leaf = SSL_get0_peer_certificate(ssl);
        if (!leaf || SSL_get_verify_result(ssl) != X509_V_OK) return chain;
        STACK_OF(X509)* verified = SSL_get0_verified_chain(ssl);
        if (!verified || sk_X509_num(verified) == 0) {
            X509_up_ref(leaf);
            chain.emplace_back(X509Ptr(leaf));
            return chain;
        }
        for (int i = 0; i < sk_X509_num(verified); ++i) {
            X509* cert = sk_X509_value(verified, i);
            X509_up_ref(cert);
            chain.emplace_back(X509Ptr(cert));
        }
        return chain;
    }

    // Callable from any thread, any number of times: only the first call for the request the
    // connection still waits for is written, on the connection's strand.
    Respond respond_for(std::uint64_t id) {
        return [weak = weak_from_this(), gate = gate_, id](ServerResponse response) {
            std::lock_guard lock(gate->mutex);
            if (!gate->open) return;
            auto self = weak.lock();
            if (!self) return;
            asio::post(self->socket_.get_executor(),
                       [self, id, response = std::move(response)]() mutable {
                           self->deliver(id, std::move(response));
                       });
        };
    }

    void deliver(std::uint64_t id, ServerResponse response) {
        if (closed_ || state_ != State::Handler || id != request_) return;
        ++request_;  // answered: a second call is ignored
        write(std::move(response), false);
    }

    // `close_after`: our own error answers end the connection (the rest of the stream cannot
    // be trusted to be at a message boundary).
    void write(ServerResponse response, bool close_after) {
        bool valid = response.status >= 200 && response.status <= 999;
        for (const auto& [name, value] : response.headers)
            valid = valid && valid_header(name, value);
        if (!valid) {
            listener_.log.limited(Log::HandlerError,
                                  "listener " + listener_.config.name +
                                      ": the handler's response is not valid HTTP (answered 500)");
            response = error_response(500, "Internal Server Error");
        }

        state_ = State::Writing;
        auto& out = response_.emplace();
        out.version(version_);
        out.result(static_cast<unsigned>(response.status));
        bool handler_close = false;
        for (auto& [name, value] : response.headers) {
            // The framing is ours.
            if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) continue;
            if (iequals(name, "connection")) {
                handler_close = http::token_list(value).exists("close");
                continue;
            }
            out.insert(name, value);
        }
        out.keep_alive(keep_alive_ && !close_after && !handler_close);
        bool no_body =
            out.result() == http::status::no_content || out.result() == http::status::not_modified;
        if (!no_body) out.content_length(response.body.size());
        if (!no_body && !head_method_) out.body() = std::move(response.body);

        with_stream([this](auto& stream) {
            http::async_write(stream, *response_,
                              [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                  self->on_write(ec);
                              });
        });
    }

    void on_write(beast::error_code ec) {
        if (closed_) return;
        if (ec) return close();
        bool eof = response_->need_eof();
        response_.reset();
        if (eof) return linger();
        keep_alive_ = head_method_ = false;  // until the next request says otherwise
        read_next();
    }

    // Closing right after the answer while the client still sends (the body we refused) would
    // reset the connection and could destroy the answer in flight: stop sending, read and
    // discard until the client closes, for at most header_timeout.
    void linger() {
        state_ = State::Closing;
        beast::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        arm(limits_.header_timeout);
        drain();
    }

    void drain() {
        buffer_.clear();
        socket_.async_read_some(buffer_.prepare(4096),
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    if (self->closed_) return;
                                    if (ec) return self->close();
                                    self->drain();
                                });
    }

    Listener& listener_;
    const HttpLimits& limits_;
    std::shared_ptr<Gate> gate_;
    tcp::socket socket_;
    asio::steady_timer timer_;
    std::string peer_;
    std::shared_ptr<ssl::context> tls_context_;  // declared before tls_: outlives it
    std::optional<TlsStream> tls_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<http::response<http::string_body>> response_;

    State state_ = State::Head;
    bool closed_ = false;
    unsigned version_ = 11;
    bool keep_alive_ = false;
    bool head_method_ = false;
    std::uint64_t request_ = 0;  // the request waiting for its Respond
    std::uint64_t timer_generation_ = 0;
};

// "host:port" or "[v6]:port"; nullopt when it is neither.
std::optional<std::pair<std::string, std::string>> split_listen(std::string_view listen) {
    auto colon = listen.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string_view host = listen.substr(0, colon), port = listen.substr(colon + 1);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') return std::nullopt;
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        return std::nullopt;
    }
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoul(std::string(port)) > 65535)
        return std::nullopt;
    return std::pair{std::string(host), std::string(port)};
}

}  // namespace

struct HttpServer::Impl {
    // Declaration order is destruction order reversed: the listeners (whose counts connections
    // update as they go) outlive the io_context (whose destruction destroys the connections),
    // which outlives the acceptors bound to it.
    Counters counters;
    Log log;
    std::vector<std::unique_ptr<Listener>> listeners;
    std::shared_ptr<Gate> gate = std::make_shared<Gate>();
    asio::io_context ioc;

    struct Acceptor {
        Acceptor(asio::io_context& ioc, Listener& l) : acceptor(ioc), retry(ioc), listener(l) {}
        tcp::acceptor acceptor;
        asio::steady_timer retry;
        Listener& listener;
    };
    std::vector<std::unique_ptr<Acceptor>> acceptors;
    std::vector<std::thread> threads;

    Impl(int concurrency, std::function<void(const std::string&)> sink)
        : log(std::move(sink)), ioc(std::max(concurrency, 1)) {}

    void bind(Listener& listener) {
        const auto& config = listener.config;
        std::string where = "listener " + config.name;
        auto parts = split_listen(config.listen);
        if (!parts)
            fail(ErrorKind::Input, where,
                 "cannot listen on " + config.listen + ": not ADDRESS:PORT or [IPV6]:PORT");
        beast::error_code ec;
        tcp::resolver resolver(ioc);
        auto found = resolver.resolve(parts->first, parts->second,
                                      tcp::resolver::numeric_service | tcp::resolver::passive, ec);
        auto& a = *acceptors.emplace_back(std::make_unique<Acceptor>(ioc, listener));
        if (!ec && found.empty()) ec = asio::error::host_not_found;
        if (!ec) {
            tcp::endpoint endpoint = *found.begin();
            if (!a.acceptor.open(endpoint.protocol(), ec) &&
                !a.acceptor.set_option(tcp::acceptor::reuse_address(true), ec) &&
                !a.acceptor.bind(endpoint, ec))
                a.acceptor.listen(asio::socket_base::max_listen_connections, ec);
        }
        if (ec)
            fail(ErrorKind::Io, where, "cannot listen on " + config.listen + ": " + ec.message());
        listener.port = a.acceptor.local_endpoint().port();
        log.line(where + ": listening on " + address_text(a.acceptor.local_endpoint().address()) +
                 " port " + std::to_string(listener.port) + (config.tls ? " (TLS)" : ""));
    }

    void accept(Acceptor& a) {
        a.acceptor.async_accept(asio::make_strand(ioc),
                                [this, &a](beast::error_code ec, tcp::socket socket) {
                                    on_accept(a, ec, std::move(socket));
                                });
    }

    void on_accept(Acceptor& a, beast::error_code ec, tcp::socket socket) {
        Listener& listener = a.listener;
        if (ec == asio::error::operation_aborted) return;
        if (ec) {
            // Typically out of file descriptors: retry a little later rather than spin.
            log.limited(Log::AcceptError,
                        "listener " + listener.config.name + ": accept failed: " + ec.message());
            a.retry.expires_after(std::chrono::milliseconds(100));
            a.retry.async_wait([this, &a](beast::error_code wait_ec) {
                if (!wait_ec) accept(a);
            });
            return;
        }
        accept(a);

        auto endpoint = socket.remote_endpoint(ec);
        if (ec) return;  // already gone
        std::string peer = address_text(endpoint.address());
        const auto& limits = listener.config.limits;
        std::optional<Log::Kind> refused;
        {
            std::lock_guard lock(listener.count_mutex);
            if (listener.open >= limits.max_connections) {
                refused = Log::OverLimit;
            } else if (auto it = listener.per_address.find(peer);
                       it != listener.per_address.end() &&
                       it->second >= limits.max_connections_per_address) {
                refused = Log::OverLimitPerAddress;
            } else {
                ++listener.open;
                ++listener.per_address[peer];
            }
        }
        if (refused) {
            counters.refused.fetch_add(1);
            socket.close(ec);
            const char* limit =
                *refused == Log::OverLimit ? "max_connections" : "max_connections_per_address";
            log.limited(*refused, "listener " + listener.config.name +
                                      ": refused a connection from " + peer + ": " + limit +
                                      " reached");
            return;
        }
        counters.accepted.fetch_add(1);
        counters.open.fetch_add(1);
        // Devices send small requests and wait for the answer: do not hold back segments.
        socket.set_option(tcp::no_delay(true), ec);
        auto connection = std::make_shared<Connection>(listener, gate, std::move(socket),
                                                       std::move(peer), listener.tls_context());
        // Everything a connection does runs on its strand, its start included.
        asio::dispatch(connection->executor(), [connection] { connection->start(); });
    }
};

HttpServer::HttpServer(std::vector<HttpListenerConfig> listeners, int threads,
                       std::function<void(const std::string&)> log)
    : impl_(std::make_unique<Impl>(threads, std::move(log))) {
    for (auto& config : listeners) {
        auto& listener = *impl_->listeners.emplace_back(
            std::make_unique<Listener>(std::move(config), impl_->counters, impl_->log));
        if (listener.config.tls) listener.tls = make_tls_context(listener.config);
        impl_->bind(listener);
    }
    for (auto& a : impl_->acceptors) impl_->accept(*a);
    for (int i = 0; i < std::max(threads, 1); ++i)
        impl_->threads.emplace_back([this] {
            // A handler exception is caught where the handler runs; anything escaping here is
            // a bug in this file or out of memory, and the server keeps its threads.
            for (;;) {
                try {
                    impl_->ioc.run();
                    return;
                } catch (const std::exception& e) {
                    impl_->log.line(std::string("http server: ") + e.what());
                }
            }
        });
}

HttpServer::~HttpServer() {
    {
        std::lock_guard lock(impl_->gate->mutex);
        impl_->gate->open = false;
    }
    impl_->ioc.stop();
    for (auto& t : impl_->threads) t.join();
    // No thread runs now: closing the acceptors and destroying the io_context (with every
    // pending handler, hence every connection) happens in ~Impl, in member order.
    for (auto& a : impl_->acceptors) {
        beast::error_code ignored;
        a->acceptor.close(ignored);
    }
}

unsigned short HttpServer::port(std::size_t i) const {
    return impl_->listeners.at(i)->port;
}

void HttpServer::reload_tls() {
    // Every context first, so a bad file leaves all listeners as they were.
    std::vector<std::shared_ptr<ssl::context>> fresh;
    for (auto& listener : impl_->listeners)
        fresh.push_back(listener->config.tls ? make_tls_context(listener->config) : nullptr);
    for (std::size_t i = 0; i < fresh.size(); ++i) {
        if (!fresh[i]) continue;
        auto& listener = *impl_->listeners[i];
        {
            std::lock_guard lock(listener.tls_mutex);
            listener.tls = std::move(fresh[i]);
        }
        impl_->log.line("listener " + listener.config.name + ": TLS reloaded from " +
                        listener.config.tls->cert.string());
    }
}

HttpServerStats HttpServer::stats() const {
    const Counters& c = impl_->counters;
    HttpServerStats s;
    s.open_connections = c.open.load();
    s.accepted = c.accepted.load();
    s.refused_over_limit = c.refused.load();
    s.handshake_failures = c.handshake_failures.load();
    s.timeouts = c.timeouts.load();
    s.requests = c.requests.load();
    return s;
}

}  // namespace brokertls
