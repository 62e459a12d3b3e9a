// One cold ACME obtain with the brokertls library, as tests/bench/acme_bench.sh times it against
// lego and certbot: a new account in an empty state directory, one order for one name, the
// http-01 challenge answered by the built-in responder, finalize, download. Writes the chain and
// key into STATE_DIR (as the other clients do) and prints the seconds spent, as measured inside
// the process, on the last line of stdout.
//
// Usage: acme_obtain DIRECTORY_URL CA_BUNDLE HTTP01_LISTEN STATE_DIR NAME

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "acme/client.hpp"
#include "acme/http.hpp"
#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/names.hpp"
#include "brokertls/store/files.hpp"
#include "challenges/solver.hpp"
#include "config/config.hpp"
#include "issuers/acme_issuer.hpp"

using namespace brokertls;

int main(int argc, char** argv) {
    if (argc != 6) {
        std::cerr << "usage: acme_obtain DIRECTORY_URL CA_BUNDLE HTTP01_LISTEN STATE_DIR NAME\n";
        return 2;
    }
    auto started = std::chrono::steady_clock::now();
    try {
        IssuerConfig issuer;
        issuer.name = "bench";
        issuer.directory = argv[1];
        issuer.email = "bench@example.com";
        issuer.ca_bundle = argv[2];
        issuer.challenge.type = ChallengeConfig::Type::Http01;
        issuer.challenge.listen = argv[3];
        std::filesystem::path state_dir = argv[4];

        auto log = [](const std::string& line) { std::cerr << line << '\n'; };
        Sleeper sleep = [](std::chrono::milliseconds d) {
            std::this_thread::sleep_for(d);
            return true;
        };
        CurlOptions options;
        options.ca_bundle = issuer.ca_bundle;
        auto transport = make_curl_transport(options);
        AcmeClient client(*transport, issuer.directory, Clock::system(), sleep);
        ensure_account(client, issuer, state_dir, log);

        SolverContext context;
        context.log = log;
        context.sleep = sleep;
        ManualGate gate;
        auto solver = make_solver(issuer.challenge, context, gate);

        PrivateKey key = PrivateKey::generate(KeyType::EcP256);
        ObtainRequest request;
        request.profile = "bench";
        request.names = {classify_name(argv[5])};
        request.deadline = SystemClock::now() + std::chrono::seconds(60);
        auto chain = obtain_certificate(client, *solver, key, request, log);

        write_file_atomic(state_dir / "cert.pem", chain_to_pem(chain));
        write_file_atomic(state_dir / "key.pem", key.to_pem(), kPrivateMode);
    } catch (const std::exception& e) {
        std::cerr << "acme_obtain: " << e.what() << '\n';
        return 1;
    }
    std::chrono::duration<double> spent = std::chrono::steady_clock::now() - started;
    std::printf("%.3f\n", spent.count());
    return 0;
}
