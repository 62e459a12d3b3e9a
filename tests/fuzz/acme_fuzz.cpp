// ACME JSON from a CA: directory, account (newAccount answer), order, authorization, problem and
// renewalInfo (RFC 9773) documents, through AcmeClient with a transport that answers with the fuzz
// input. The first byte picks the document, the rest is an HTTP answer (fuzz_support.hpp).
#include "acme/client.hpp"
#include "acme/problem.hpp"
#include "brokertls/error.hpp"
#include "fuzz_support.hpp"

namespace {

using namespace brokertls;

constexpr const char* kDirectory = R"({"newNonce":"https://ca/nonce","newAccount":"https://ca/acct",
  "newOrder":"https://ca/order","revokeCert":"https://ca/revoke","renewalInfo":"https://ca/ari"})";

// Answers the directory and nonce requests as a CA would (unless the directory is fuzzed) and
// every other request with the fuzzed answer.
class FuzzTransport : public HttpTransport {
  public:
    FuzzTransport(HttpResponse answer, bool fuzz_directory)
        : answer_(std::move(answer)), fuzz_directory_(fuzz_directory) {}
    HttpResponse send(const HttpRequest& request) override {
        if (request.method == "HEAD") return {200, {{"replay-nonce", "n0nce"}}, ""};
        if (request.url == "https://ca/dir" && !fuzz_directory_)
            return {200, {{"replay-nonce", "n0nce"}}, kDirectory};
        return answer_;
    }

  private:
    HttpResponse answer_;
    bool fuzz_directory_;
};

// A certificate with an authority key identifier, as ARI needs.
constexpr const char* kCertificate = R"(-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgICEjQwCgYIKoZIzj0EAwIwEzERMA8GA1UEAwwIQVJJIFJv
b3QwHhcNMjYxMjAyMDMxNDI3WhcNMzYxMTI5MDMxNDI3WjAeMRwwGgYDVQQDDBNi
cm9rZXIubXF0dC5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnqpn
ujSCtNIroNi0EMwn15rb1HCy/uvlv+pvnoRGnHbfhnrpKvX99EdJIIm1o6WEMiIY
Hr5zd6UWAHEQt/hNm6NiMGAwHwYDVR0jBBgwFoAUXU1eLao6gOVu5OmbOBTbbU6g
KNowHgYDVR0RBBcwFYITYnJva2VyLm1xdHQuZXhhbXBsZTAdBgNVHQ4EFgQUXU1e
Lao6gOVu5OmbOBTbbU6gKNowCgYIKoZIzj0EAwIDSQAwRgIhAI03yrYRRX4Z2nPm
jrOTkXtpC6nUgEtfn/skr8EKvKDAAiEA5COV55Qyh4QsUAgHHnAkRSi/RF9Lbnns
m++Lrs586po=
-----END CERTIFICATE-----
)";

const PrivateKey& account_key() {
    static const PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    std::string input = fuzz::text(data + 1, size - 1);
    HttpResponse answer = fuzz::http_response(input);
    int kind = data[0] % 6;
    FuzzTransport transport(answer, kind == 0);
    static FakeClock clock{from_iso8601("2030-01-01T00:00:00Z")};
    AcmeClient client(transport, "https://ca/dir", clock,
                      [](std::chrono::milliseconds) { return true; });
    try {
        switch (kind) {
            case 0:
                (void)client.directory();
                break;
            case 1:
                (void)client.account(account_key(), AccountRequest{});
                break;
            case 2:
                client.use_account(account_key(), "https://ca/acct/1");
                (void)client.get_order("https://ca/order/1");
                break;
            case 3:
                client.use_account(account_key(), "https://ca/acct/1");
                (void)client.get_authorization("https://ca/authz/1");
                break;
            case 4:
                (void)parse_problem(answer, TimePoint{}).to_string();
                break;
            default: {
                static const Certificate certificate = Certificate::parse(kCertificate, "ari");
                (void)client.renewal_info(certificate);
                break;
            }
        }
    } catch (const Error&) {
    }
    return 0;
}
