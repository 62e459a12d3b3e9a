// ACME JSON from a CA: directory, account (newAccount answer), order, authorization and problem
// documents, through AcmeClient with a transport that answers with the fuzz input. The first
// byte picks the document, the rest is an HTTP answer (fuzz_support.hpp).
#include "brokertls/acme/client.hpp"
#include "brokertls/acme/problem.hpp"
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

const PrivateKey& account_key() {
    static const PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    std::string input = fuzz::text(data + 1, size - 1);
    HttpResponse answer = fuzz::http_response(input);
    int kind = data[0] % 5;
    FuzzTransport transport(answer, kind == 0);
    AcmeClient client(transport, "https://ca/dir", [](std::chrono::milliseconds) { return true; });
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
            default:
                (void)parse_problem(answer).to_string();
                break;
        }
    } catch (const Error&) {
    }
    return 0;
}
