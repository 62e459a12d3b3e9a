// brokertls-service's request handlers in-process, behind the HTTP layer: routes, the /sign
// body, /v1's JSON bodies, device registration and addresses, enrollment tokens, EST bodies and
// the challenge path, with a real brokertls-ca directory behind them. The first input byte
// chooses whether the harness signs the request with a client's or an admin's request HMAC, so
// that what follows authentication is reached too; then "METHOD TARGET", header lines, an
// empty line and the body.
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>

#include "brokertls/ca/authority.hpp"
#include "brokertls/store/files.hpp"
#include "fleet/request_hmac.hpp"
#include "fuzz_support.hpp"
#include "service/issuing_service.hpp"

namespace {

namespace fs = std::filesystem;
using namespace brokertls;

constexpr const char* kClientKey = "fleet-key-0123456789abcdef";
constexpr const char* kAdminKey = "ops-key-0123456789abcdef";

struct Harness {
    fs::path dir;
    FakeClock clock{from_iso8601("2030-01-01T00:00:00Z")};
    ServiceConfig config;
    std::unique_ptr<IssuingService> service;
    HttpHandler handler;

    Harness() {
        char name[] = "/tmp/fuzz-service-XXXXXX";
        if (!::mkdtemp(name)) std::abort();
        dir = name;
        CertificateAuthority::init_root(dir / "ca", CaInitOptions{}, clock.now());
        write_file_atomic(dir / "fleet.key", std::string(kClientKey) + "\n", kPrivateMode);
        write_file_atomic(dir / "ops.key", std::string(kAdminKey) + "\n", kPrivateMode);
        write_file_atomic(dir / "tls.pem", "unused here", kPublicMode);
        std::ofstream(dir / "service.json") << R"({
          "listeners": {
            "api": {"listen": "127.0.0.1:0", "serve": ["sign", "v1", "est", "acme-challenge"],
                    "tls": {"cert": "tls.pem", "key": "tls.pem"}}
          },
          "limits": {"requests_per_minute_per_address": 0, "requests_per_minute_per_client": 0},
          "issuers": {"ca": {"type": "local-ca", "dir": "ca"}},
          "profiles": {
            "edge": {"issuer": "ca", "domains": ["*.example.org"], "lifetime": "30d"},
            "device": {"issuer": "ca", "kind": "client", "domains": ["*"], "lifetime": "7d"}
          },
          "auth": [{"name": "local", "ip": ["127.0.0.1"], "domains": ["*.example.org"],
                    "profile": "edge"}],
          "clients": {
            "fleet": {"key_file": "fleet.key", "profiles": ["edge", "device"],
                      "domains": ["*.example.org", "dev-*"]},
            "ops": {"key_file": "ops.key", "profiles": [], "admin": true}
          },
          "devices": {"zone": "devices.example.org", "profile": "edge"},
          "est": {"profile": "device"}
        })";
        config = load_service_config(dir / "service.json");
        service = std::make_unique<IssuingService>(config, clock, [](const std::string&) {});
        handler = service->handler(config.listeners.front());
    }

    ~Harness() {
        handler = nullptr;
        service.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

ServerRequest request_from(std::string_view input) {
    ServerRequest req;
    req.peer_address = "127.0.0.1";
    req.tls = true;
    auto line = [&input] {
        size_t end = input.find('\n');
        std::string_view out = input.substr(0, end);
        input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
        return out;
    };
    std::string_view first = line();
    size_t space = first.find(' ');
    req.method = std::string(first.substr(0, space));
    req.target = space == std::string_view::npos ? "/" : std::string(first.substr(space + 1));
    while (!input.empty()) {
        std::string_view header = line();
        if (header.empty()) break;
        size_t colon = header.find(':');
        if (colon == std::string_view::npos) continue;
        std::string name = ascii_lower(header.substr(0, colon));
        std::string_view value = header.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        req.headers.emplace_back(std::move(name), std::string(value));
    }
    req.body = std::string(input);
    return req;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Harness harness;
    if (size == 0) return 0;
    const unsigned signer = data[0] % 3;  // 0: unsigned, 1: the client, 2: the admin
    ServerRequest req = request_from(brokertls::fuzz::text(data + 1, size - 1));
    // A second a request: nonces age out of the replay window, certificates stay valid.
    harness.clock.advance(std::chrono::seconds(1));
    if (signer != 0)
        req.headers.emplace_back(
            "authorization",
            sign_request_hmac(signer == 1 ? "fleet" : "ops", signer == 1 ? kClientKey : kAdminKey,
                              req.method, req.target, req.body, harness.clock.now()));
    std::promise<ServerResponse> answer;
    auto got = answer.get_future();
    harness.handler(std::move(req), [&](ServerResponse r) { answer.set_value(std::move(r)); });
    // Every request is answered, and soon: a handler that never answers hangs a connection.
    if (got.wait_for(std::chrono::seconds(30)) != std::future_status::ready) std::abort();
    ServerResponse response = got.get();
    if (response.status < 200 || response.status > 599) std::abort();
    return 0;
}
