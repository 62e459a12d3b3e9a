#include "service/issuing_service.hpp"

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "brokertls/crypto/digest.hpp"
#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "config/config.hpp"
#include "service/audit.hpp"
#include "service/auth.hpp"
#include "service/challenge_board.hpp"
#include "service/devices.hpp"
#include "service/est.hpp"
#include "service/rate_plan.hpp"
#include "service/request_limiter.hpp"
#include "service/store.hpp"

namespace brokertls {

namespace {

using nlohmann::json;

// A request answered with an error: thrown inside a handler, turned into the response.
struct Refused {
    int status;
    std::string reason;  // for the client; the audit may get more
    std::string detail = "";
};

// A CSR as read from a request, with the names it asks for.
struct Asked {
    std::shared_ptr<const CertificateRequest> csr;
    std::string common_name;
    std::vector<SubjectAltName> sans;
    std::vector<std::string> names;  // CN and SAN values, each once, for globs and the audit
    std::string der;
};

// The names a parsed CSR asks for, after checking its signature and key (415 otherwise).
Asked asked_from(CertificateRequest parsed) {
    Asked asked;
    try {
        auto csr = std::make_shared<CertificateRequest>(std::move(parsed));
        asked.common_name = csr->common_name();
        asked.sans = csr->subject_alt_names();
        asked.der = csr->to_der();
        if (!csr->signature_valid()) throw Refused{415, "the CSR's signature does not verify"};
        if (auto problem = public_key_problem(csr->public_key()))
            throw Refused{415, "the CSR's key: " + *problem};
        asked.csr = std::move(csr);
    } catch (const Error& e) {
        throw Refused{415, "the CSR cannot be parsed", e.what()};
    }
    if (!asked.common_name.empty()) asked.names.push_back(asked.common_name);
    for (const auto& san : asked.sans)
        if (std::find(asked.names.begin(), asked.names.end(), san.value) == asked.names.end())
            asked.names.push_back(san.value);
    if (asked.names.empty()) throw Refused{415, "the CSR names nothing (no CN, no subjectAltName)"};
    return asked;
}

// A PEM (or DER) CSR from a request body.
Asked read_csr(std::string_view text) {
    std::optional<CertificateRequest> csr;
    try {
        csr.emplace(CertificateRequest::parse(text, "CSR"));
    } catch (const Error& e) {
        throw Refused{415, "the CSR cannot be parsed", e.what()};
    }
    return asked_from(std::move(*csr));
}

bool all_match(const std::vector<std::string>& names, const std::vector<std::string>& globs) {
    return std::all_of(names.begin(), names.end(), [&](const std::string& n) {
        return std::any_of(globs.begin(), globs.end(),
                           [&](const std::string& g) { return glob_match(g, n); });
    });
}

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + printable(n);
    return out;
}

// What the profile allows, and the SANs the certificate gets.
SignJob job_for(const Asked& asked, const ServiceProfile& profile) {
    if (!all_match(asked.names, profile.domains))
        throw Refused{403, "profile " + profile.name + " does not allow " + joined(asked.names)};
    SignJob job{asked.csr, asked.common_name, asked.sans, &profile, ""};
    if (profile.kind == CertificateProfile::Server) {
        for (const auto& san : asked.sans)
            if (san.type != SubjectAltName::Type::Dns && san.type != SubjectAltName::Type::Ip)
                throw Refused{403,
                              "a server certificate names only DNS names and IP addresses, "
                              "not " +
                                  printable(san.to_string())};
        // Clients match server names against SANs only (RFC 6125): the CN becomes one.
        if (!asked.common_name.empty() &&
            std::none_of(asked.sans.begin(), asked.sans.end(),
                         [&](const SubjectAltName& s) { return s.value == asked.common_name; })) {
            SubjectAltName cn{SubjectAltName::Type::Other, asked.common_name};
            try {
                cn = classify_name(asked.common_name);
            } catch (const Error&) {
            }
            if (cn.type != SubjectAltName::Type::Dns && cn.type != SubjectAltName::Type::Ip)
                throw Refused{403, "the CN " + printable(asked.common_name) +
                                       " is not a DNS name or IP address"};
            job.names.push_back(cn);
        }
    } else {
        if (asked.common_name.empty())
            throw Refused{403, "a client certificate needs a CN (it becomes the identity)"};
        if (auto problem = identity_problem(asked.common_name))
            throw Refused{403, "the CN " + printable(asked.common_name) +
                                   " is not usable as an identity: " + *problem};
    }
    return job;
}

ServerResponse pem_response(const std::vector<Certificate>& chain) {
    ServerResponse r;
    r.headers.emplace_back("Content-Type", "application/pem-certificate-chain");
    for (const auto& c : chain) r.body += c.to_pem();
    return r;
}

ServerResponse json_response(int status, const json& body);

ServerResponse error_response(int status, const std::string& reason,
                              std::optional<std::chrono::seconds> retry_after) {
    ServerResponse r = json_response(status, {{"error", reason}, {"status", status}});
    if (retry_after) r.headers.emplace_back("Retry-After", std::to_string(retry_after->count()));
    if (status == 401) r.headers.emplace_back("WWW-Authenticate", std::string(kRequestHmacScheme));
    return r;
}

ServerResponse json_response(int status, const json& body) {
    ServerResponse r;
    r.status = status;
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    return r;
}

}  // namespace

struct IssuingService::Impl {
    Impl(const ServiceConfig& c, Clock& clk, LogLine l)
        : config(c),
          clock(clk),
          log(std::move(l)),
          store(make_file_store(config.state_dir)),
          audit(config.audit_file),
          replay(config.replay_window) {
        if (config.devices) {
            // Made at the first start when not configured: the store alone then holds no usable
            // device key, though a copy of the whole state directory still does.
            sealer.emplace(SecretSealer::load(
                config.secrets_key_file.value_or(config.state_dir / "secrets.key"),
                !config.secrets_key_file));
            devices.emplace(*config.devices, *store, *sealer);
        }
        for (const auto& [name, issuer] : config.issuers) {
            if (issuer.type != ServiceIssuer::Type::Acme) continue;
            auto plan = std::make_unique<Plan>();
            try {
                if (auto saved = store->get(plan_key(name)))
                    plan->planner = RatePlanner::from_json(json::parse(*saved), issuer.rate_limits);
            } catch (const std::exception& e) {
                log("issuer " + name +
                    ": the saved rate plan is unusable, starting afresh: " + e.what());
            }
            if (!plan->planner) plan->planner.emplace(issuer.rate_limits);
            plans.emplace(name, std::move(plan));
        }
        for (const auto& [name, issuer] : config.issuers) {
            if (issuer.type == ServiceIssuer::Type::LocalCa) {
                signers.emplace(name, make_local_ca_signer(issuer, clock, log));
                continue;
            }
            std::shared_ptr<ChallengeSolver> solver;
            if (issuer.acme.challenge.type == ChallengeConfig::Type::Http01) {
                solver = make_board_solver(board);
            } else {
                SolverContext context;
                context.log = [this, name = name](const std::string& line) {
                    log("issuer " + name + ": " + line);
                };
                context.sleep = [this](std::chrono::milliseconds d) {
                    return clock.sleep_for(d, stop.get_token());
                };
                try {
                    solver = make_solver(issuer.acme.challenge, std::move(context), gate);
                } catch (const Error& e) {
                    fail(ErrorKind::Input,
                         config.file.filename().string() + ": issuers." + name + ".challenge",
                         e.what());
                }
            }
            signers.emplace(
                name, make_acme_signer(issuer, std::move(solver), config.state_dir, clock, log,
                                       issuer.max_concurrent_orders, issuer.order_timeout));
        }
    }

    // Who asked, for the audit and the response.
    struct Caller {
        std::string client;
        std::string endpoint;
        std::string address;
    };

    void refuse(const Caller& caller, const std::string& profile,
                const std::vector<std::string>& names, const Refused& r) {
        audit_write({clock.now(), "refused", caller.client, caller.address, caller.endpoint,
                     profile, names, "", "", r.status,
                     r.reason + (r.detail.empty() ? "" : " (" + r.detail + ")")});
    }

    void audit_write(const AuditRecord& record) {
        try {
            audit.write(record);
        } catch (const Error& e) {
            log(std::string("audit: ") + e.what());
        }
    }

    static std::string plan_key(const std::string& issuer) {
        return "rate/" + sha256_hex(issuer).substr(0, 32) + ".json";
    }

    // The last certificate an ACME issuer gave for this set of names: its renewal names it in
    // ARI `replaces`, which exempts the order from the CA's limits.
    static std::string issued_key(const std::string& issuer, std::vector<std::string> names) {
        std::sort(names.begin(), names.end());
        std::string joined_names;
        for (const auto& n : names) joined_names += ascii_lower(n) + '\n';
        return "issued/" + sha256_hex(issuer).substr(0, 16) + "/" + sha256_hex(joined_names) +
               ".pem";
    }

    // Whether the CA's limits let this order go now (and `job.replaces` set for a renewal);
    // nullopt when they do, else the refusal to answer (429 and when to come back).
    std::optional<SignOutcome> plan_order(SignJob& job, const std::vector<std::string>& names) {
        auto plan = plans.find(job.profile->issuer);
        if (plan == plans.end()) return std::nullopt;
        TimePoint now = clock.now();
        IssuanceRequest request{"", names, false, now};
        try {
            if (auto pem = store->get(issued_key(job.profile->issuer, names))) {
                Certificate previous = Certificate::parse(*pem, "issued certificate");
                if (previous.not_after() > now) {
                    job.replaces = AcmeClient::ari_cert_id(previous);
                    request.replaces = true;
                    request.needed_by = previous.not_after();
                }
            }
        } catch (const Error& e) {
            log(std::string("rate plan: ") + e.what());
        }
        request.key = issued_key(job.profile->issuer, names);
        std::lock_guard lock(plan->second->mutex);
        RateDecision decision = plan->second->planner->decide(request, now);
        try {
            store->put(plan_key(job.profile->issuer), plan->second->planner->to_json().dump(),
                       Durability::Durable);
        } catch (const Error& e) {
            log(std::string("rate plan: ") + e.what());
        }
        if (decision.outcome == RateDecision::Outcome::Admitted) return std::nullopt;
        auto wait = std::chrono::ceil<std::chrono::seconds>(decision.retry_at - now);
        std::string why = decision.outcome == RateDecision::Outcome::Queued
                              ? "queued for the CA's rate limits at position " +
                                    std::to_string(decision.position) + ", expected at " +
                                    to_iso8601(decision.retry_at)
                              : "the queue for the CA's rate limits is full";
        return SignOutcome{{}, 429, why, std::max(wait, std::chrono::seconds(1))};
    }

    static std::string cache_key(const Asked& asked, const ServiceProfile& profile) {
        std::string h = sha256_hex(profile.name + '\n' + asked.der);
        return "cache/" + h.substr(0, 2) + "/" + h + ".pem";
    }

    // A certificate issued for this very CSR that is not yet due for renewal (ACMEMS: machines
    // sharing a key and CSR all get the same certificate).
    std::optional<std::vector<Certificate>> cached(const std::string& key,
                                                   const ServiceProfile& profile) {
        try {
            auto pem = store->get(key);
            if (!pem || pem->empty()) return std::nullopt;
            auto chain = Certificate::parse_chain(*pem, key);
            if (chain.front().not_after() - clock.now() <= profile.renew_within)
                return std::nullopt;
            return chain;
        } catch (const Error&) {
            return std::nullopt;  // a damaged entry is a miss; the next issuance replaces it
        }
    }

    // Issues (or finds in the cache) and answers through `answer`, on whatever thread.
    void issue(SignJob job, const Asked& asked, const Caller& caller,
               std::function<void(const SignOutcome&, bool cached)> answer) {
        const ServiceProfile& profile = *job.profile;
        std::string key = cache_key(asked, profile);
        if (auto chain = cached(key, profile)) {
            audit_write({clock.now(), "cached", caller.client, caller.address, caller.endpoint,
                         profile.name, asked.names, chain->front().serial_hex(), profile.issuer,
                         200, ""});
            answer(SignOutcome{*chain, 200, "", std::nullopt}, true);
            return;
        }
        auto names = asked.names;
        if (auto refused = plan_order(job, names)) {
            refuse(caller, profile.name, names, Refused{refused->status, refused->reason});
            answer(*refused, false);
            return;
        }
        bool remember = plans.count(profile.issuer) > 0;
        signers.at(profile.issuer)
            ->submit(std::move(job), [this, key, caller, names, &profile, remember,
                                      answer = std::move(answer)](SignOutcome outcome) {
                if (outcome.status == 200) {
                    std::string pem;
                    for (const auto& c : outcome.chain) pem += c.to_pem();
                    try {
                        store->put(key, pem, Durability::Cache);
                        if (remember)
                            store->put(issued_key(profile.issuer, names),
                                       outcome.chain.front().to_pem(), Durability::Durable);
                    } catch (const Error& e) {
                        log(std::string("cache: ") + e.what());
                    }
                    audit_write({clock.now(), "issued", caller.client, caller.address,
                                 caller.endpoint, profile.name, names,
                                 outcome.chain.front().serial_hex(), profile.issuer, 200, ""});
                } else {
                    refuse(caller, profile.name, names, Refused{outcome.status, outcome.reason});
                }
                answer(outcome, false);
            });
    }

    // POST /sign (ACMEMS): a PEM CSR; the first auth block the request passes decides.
    void sign(const ServerRequest& req, Respond respond) {
        Caller caller{"", "sign", req.peer_address};
        std::vector<std::string> names;
        auto text_error = [&](const Refused& r) {
            refuse(caller, "", names, r);
            ServerResponse response{r.status, {{"Content-Type", "text/plain"}}, r.reason + "\n"};
            if (r.status == 405) response.headers.emplace_back("Allow", "POST");
            respond(std::move(response));
        };
        try {
            if (req.method != "POST") throw Refused{405, "only POST /sign is supported"};
            Asked asked = read_csr(req.body);
            names = asked.names;
            std::optional<AcmemsHmac> hmac;
            if (auto header = req.header("authentication")) {
                hmac = parse_acmems_authentication(*header);
                if (!hmac)
                    throw Refused{
                        403, "the Authentication header is not \"hmac name=sha256, hash=HEX\""};
            }
            std::string why;
            const AuthBlock* chosen = nullptr;
            for (const auto& block : config.auth) {
                std::string no = "block " + block.name + ": ";
                if (!block.ip.empty() &&
                    std::none_of(block.ip.begin(), block.ip.end(), [&](const AddressRange& r) {
                        return r.contains(req.peer_address);
                    })) {
                    why += no + "address not allowed; ";
                    continue;
                }
                if (block.hmac) {
                    if (!hmac) {
                        why += no + "no HMAC; ";
                        continue;
                    }
                    if (!constant_time_equal(hmac_hex(hmac->digest, block.hmac->key, req.body),
                                             hmac->hash)) {
                        why += no + "HMAC does not match; ";
                        continue;
                    }
                }
                if (!all_match(asked.names, block.domains)) {
                    why += no + "names not allowed; ";
                    continue;
                }
                chosen = &block;
                break;
            }
            if (!chosen)
                throw Refused{
                    403, "no auth block allows this request",
                    why.empty() ? "no auth blocks configured" : why.substr(0, why.size() - 2)};
            caller.client = chosen->name;
            const ServiceProfile& profile = config.profiles.at(chosen->profile);
            SignJob job = job_for(asked, profile);
            issue(std::move(job), asked, caller, [respond](const SignOutcome& outcome, bool) {
                if (outcome.status == 200) return respond(pem_response(outcome.chain));
                ServerResponse r{
                    outcome.status, {{"Content-Type", "text/plain"}}, outcome.reason + "\n"};
                if (outcome.retry_after)
                    r.headers.emplace_back("Retry-After",
                                           std::to_string(outcome.retry_after->count()));
                respond(std::move(r));
            });
        } catch (const Refused& r) {
            text_error(r);
        }
    }

    // Who sent a /v1 request: a configured client or a device (request HMAC), or the holder
    // of a client certificate the listener verified.
    struct Principal {
        std::string name;  // for the audit
        const ServiceClient* client = nullptr;
        std::optional<Device> device;
        std::optional<Certificate> certificate;
    };

    Principal authenticate(const ServerRequest& req) {
        if (auto header = req.header("authorization")) {
            auto auth = parse_request_hmac(*header);
            if (!auth) throw Refused{401, "the Authorization header is malformed"};
            Principal who;
            std::string key;
            if (auto client = config.clients.find(auth->key_id); client != config.clients.end()) {
                who.client = &client->second;
                who.name = client->first;
                key = client->second.key.key;
            } else if (devices) {
                try {
                    who.device = devices->find(auth->key_id);
                } catch (const Error& e) {
                    log(e.what());
                    throw Refused{500, "this device's record cannot be read (see the service log)"};
                }
                if (who.device) {
                    who.name = "device " + who.device->id;
                    key = who.device->key;
                }
            }
            if (key.empty() || !request_hmac_valid(*auth, key, req.method, req.target, req.body))
                throw Refused{401, "unknown key id or wrong signature", printable(auth->key_id)};
            if (auto problem = replay.admit(*auth, clock.now())) throw Refused{401, *problem};
            return who;
        }
        if (!req.peer_chain.empty()) {
            const Certificate& leaf = req.peer_chain.front();
            if (leaf.not_after() < clock.now())
                throw Refused{401, "the client certificate has expired"};
            return Principal{
                "certificate " + printable(leaf.common_name()) + " serial " + leaf.serial_hex(),
                nullptr, std::nullopt, leaf};
        }
        throw Refused{401, "authenticate with " + std::string(kRequestHmacScheme) +
                               " or a client certificate"};
    }

    // A JSON object body with only these keys.
    static json json_body(const ServerRequest& req, std::initializer_list<const char*> keys) {
        auto type = req.header("content-type");
        if (!type || !type->starts_with("application/json"))
            throw Refused{415, "the body must be application/json"};
        json body = json::parse(req.body, nullptr, false);
        if (body.is_discarded() || !body.is_object())
            throw Refused{400, "the body is not a JSON object"};
        for (const auto& item : body.items())
            if (std::none_of(keys.begin(), keys.end(),
                             [&](const char* k) { return item.key() == k; }))
                throw Refused{400, "unknown field " + printable(item.key())};
        return body;
    }

    static std::string string_field(const json& body, const char* key) {
        if (!body.contains(key) || !body[key].is_string())
            throw Refused{400, std::string("needs \"") + key + "\" (a string)"};
        return body[key].get<std::string>();
    }

    static std::vector<std::string> addresses_field(const json& body) {
        if (!body["addresses"].is_array() || body["addresses"].size() > 16)
            throw Refused{400, "\"addresses\" must be an array of at most 16 IP addresses"};
        std::vector<std::string> out;
        for (const auto& a : body["addresses"]) {
            if (!a.is_string() || !AddressRange::parse(a.get<std::string>()) ||
                a.get<std::string>().find('/') != std::string::npos)
                throw Refused{400, "\"addresses\" must hold IP addresses"};
            out.push_back(a.get<std::string>());
        }
        return out;
    }

    void require_admin(const Principal& who) {
        if (!who.client || !who.client->admin)
            throw Refused{403, "only an admin client may do this"};
    }

    // Throws Refused unless `who` may ask for these names from this profile.
    void authorize_certificate(const Principal& who, const Asked& asked,
                               const ServiceProfile& profile) {
        if (who.client) {
            const auto& allowed = who.client->profiles;
            if (std::find(allowed.begin(), allowed.end(), profile.name) == allowed.end())
                throw Refused{403, "client " + who.name + " may not use profile " + profile.name};
            if (!who.client->domains.empty() && !all_match(asked.names, who.client->domains))
                throw Refused{403,
                              "client " + who.name + " may not ask for " + joined(asked.names)};
        } else if (who.device) {
            // A device gets certificates for its own name and nothing else.
            if (profile.name != config.devices->profile)
                throw Refused{403, "a device may use profile " + config.devices->profile + " only"};
            if (asked.names != std::vector<std::string>{who.device->name})
                throw Refused{403,
                              "device " + who.device->id + " may ask only for " + who.device->name};
        } else {
            // Renewal with the current certificate (like `step ca renew`): exactly its names.
            const Certificate& leaf = *who.certificate;
            std::set<std::string> have;
            std::string cn = leaf.common_name();
            if (!cn.empty()) have.insert(cn);
            for (const auto& san : leaf.subject_alt_names()) have.insert(san.value);
            std::set<std::string> asked_for(asked.names.begin(), asked.names.end());
            if (asked.common_name != cn || asked_for != have)
                throw Refused{403,
                              "a renewal with a client certificate must ask for exactly its "
                              "names (CN " +
                                  printable(cn) + ")"};
        }
    }

    // POST /v1/certificates {"csr": PEM, "profile": NAME}: the chain as JSON, with notAfter and
    // when to renew. A device may leave out the profile.
    void v1_certificates(const ServerRequest& req, const Principal& who, Caller& caller,
                         std::vector<std::string>& names, std::string& profile_name,
                         const Respond& respond) {
        json body = json_body(req, {"csr", "profile"});
        std::string csr = string_field(body, "csr");
        profile_name = body.contains("profile") || !who.device ? string_field(body, "profile")
                                                               : config.devices->profile;
        Asked asked = read_csr(csr);
        names = asked.names;
        auto profile = config.profiles.find(profile_name);
        if (profile == config.profiles.end())
            throw Refused{404, "no profile " + printable(profile_name)};
        authorize_certificate(who, asked, profile->second);
        SignJob job = job_for(asked, profile->second);
        issue(std::move(job), asked, caller,
              [respond, name = profile_name](const SignOutcome& outcome, bool from_cache) {
                  if (outcome.status != 200)
                      return respond(
                          error_response(outcome.status, outcome.reason, outcome.retry_after));
                  const Certificate& leaf = outcome.chain.front();
                  std::string pem;
                  for (const auto& c : outcome.chain) pem += c.to_pem();
                  // When to come back: a third of the lifetime before the end (as certmagic).
                  TimePoint renew_at =
                      leaf.not_after() - (leaf.not_after() - leaf.not_before()) / 3;
                  respond(json_response(200, {{"certificate", pem},
                                              {"serial", leaf.serial_hex()},
                                              {"not_after", to_iso8601(leaf.not_after())},
                                              {"renew_at", to_iso8601(renew_at)},
                                              {"profile", name},
                                              {"cached", from_cache}}));
              });
    }

    static json device_json(const Device& d) {
        return {{"id", d.id}, {"name", d.name}, {"addresses", d.addresses}};
    }

    // Sets a device's addresses, answering what went wrong as a Refused.
    Device update_addresses(const std::string& id, const std::vector<std::string>& addresses) {
        try {
            return devices->set_addresses(id, addresses);
        } catch (const Error& e) {
            log(std::string("device ") + id + ": " + e.what());
            if (e.kind() == ErrorKind::Io)
                throw Refused{503, "the DNS server is unavailable", e.what()};
            throw Refused{e.kind() == ErrorKind::Input ? 400 : 503, e.what()};
        }
    }

    // Every /v1 request: authentication, then the endpoint.
    void v1(const ServerRequest& req, Respond respond) {
        Caller caller{"", "v1", req.peer_address};
        std::vector<std::string> names;
        std::string profile;
        try {
            std::string_view path = req.path();
            auto method = [&](const char* m) {
                if (req.method != m) throw Refused{405, std::string("use ") + m};
            };
            // A new device with a one-time enrollment token (no key yet to sign with).
            auto bearer = req.header("authorization");
            if (path == "/v1/devices" && bearer && bearer->starts_with("Bearer ")) {
                method("POST");
                if (!devices) throw Refused{404, "this service registers no devices"};
                caller.client = "enrollment token";
                // A malformed body must not spend the token: read it first.
                auto addresses = registration_addresses(req);
                if (!redeem_enrollment_token(*store, std::string(bearer->substr(7)), clock.now()))
                    throw Refused{401, "unknown, used or expired enrollment token"};
                return register_device(std::move(addresses), caller, respond);
            }
            Principal who = authenticate(req);
            caller.client = who.name;
            if (auto wait = per_client.admit(who.name, clock.now())) {
                refuse(caller, profile, names, Refused{429, "too many requests from " + who.name});
                return respond(error_response(429, "too many requests from " + who.name, *wait));
            }
            if (path == "/v1/certificates") {
                method("POST");
                return v1_certificates(req, who, caller, names, profile, respond);
            }
            if (path == "/v1/devices") {
                method("POST");
                if (!devices) throw Refused{404, "this service registers no devices"};
                require_admin(who);
                return register_device(registration_addresses(req), caller, respond);
            }
            constexpr std::string_view kDevices = "/v1/devices/";
            if (path.starts_with(kDevices) && path.ends_with("/address")) {
                method("PUT");
                std::string id(path.substr(
                    kDevices.size(),
                    path.size() - kDevices.size() - std::string_view("/address").size()));
                if (!devices || !who.device || who.device->id != id)
                    throw Refused{403, "a device may update only its own address"};
                json body = json_body(req, {"addresses"});
                if (!body.contains("addresses")) throw Refused{400, "needs \"addresses\""};
                // The DNS server may take seconds: not on an HTTP thread.
                return in_background(
                    [this, id, addresses = addresses_field(body), caller, respond] {
                        try {
                            Device d = update_addresses(id, addresses);
                            audit_write({clock.now(), "address", caller.client, caller.address,
                                         "v1", "", d.addresses, "", "", 200, ""});
                            respond(json_response(200, device_json(d)));
                        } catch (const Refused& r) {
                            refuse(caller, "", addresses, r);
                            respond(error_response(r.status, r.reason, std::nullopt));
                        }
                    });
            }
            if (path == "/v1/enrollment-tokens") {
                method("POST");
                if (!devices && config.est_profiles.empty())
                    throw Refused{404, "this service enrolls no devices (no devices, no est)"};
                require_admin(who);
                json body = json_body(req, {"count", "valid_for"});
                json count = body.value("count", json(1));
                if (!count.is_number_integer() || count.get<long long>() < 1 ||
                    count.get<long long>() > 1000)
                    throw Refused{400, "\"count\" must be a whole number from 1 to 1000"};
                json valid = body.value("valid_for", json("7d"));
                auto valid_for =
                    valid.is_string() ? parse_duration(valid.get<std::string>()) : std::nullopt;
                if (!valid_for)
                    throw Refused{400, "\"valid_for\" must be a duration such as \"7d\""};
                TimePoint expires = clock.now() + *valid_for;
                return respond(json_response(
                    200, {{"tokens",
                           create_enrollment_tokens(*store, count.get<int>(), expires, who.name)},
                          {"expires", to_iso8601(expires)}}));
            }
            if (path == "/v1/status") {
                method("GET");
                require_admin(who);
                json issuers = json::object();
                for (auto& [name, plan] : plans) {
                    std::lock_guard lock(plan->mutex);
                    RateStatus st = plan->planner->status(clock.now());
                    json busiest = json::array();
                    for (const auto& d : st.busiest_domains)
                        busiest.push_back(
                            {{"domain", d.domain}, {"used", d.used}, {"queued", d.queued}});
                    issuers[name] = {{"orders_used", st.orders_used},
                                     {"orders_left", st.orders_left},
                                     {"queue_length", st.queue_length},
                                     {"backlog_clears", to_iso8601(st.backlog_clears)},
                                     {"busiest_domains", busiest}};
                }
                return respond(json_response(200, {{"issuers", issuers}}));
            }
            if (path == "/v1/issuances") {
                method("GET");
                require_admin(who);
                return respond(json_response(200, {{"records", audit.newest(1000)}}));
            }
            throw Refused{404, "no such endpoint"};
        } catch (const Refused& r) {
            refuse(caller, profile, names, r);
            respond(error_response(r.status, r.reason, std::nullopt));
        }
    }

    // The optional {"addresses": [...]} of POST /v1/devices.
    static std::vector<std::string> registration_addresses(const ServerRequest& req) {
        if (req.body.empty()) return {};
        json body = json_body(req, {"addresses"});
        return body.contains("addresses") ? addresses_field(body) : std::vector<std::string>{};
    }

    // POST /v1/devices: 201 with the device's id, name and HMAC key (shown this once), from a
    // background thread (the store's fsync, the DNS server). When the address cannot be set,
    // the device is registered anyway and told why ("address_error"): it retries with
    // PUT /v1/devices/ID/address.
    void register_device(std::vector<std::string> addresses, const Caller& caller,
                         const Respond& respond) {
        in_background([this, addresses = std::move(addresses), caller, respond] {
            try {
                respond(json_response(201, registered_device(addresses, caller)));
            } catch (const Refused& r) {
                refuse(caller, "", {}, r);
                respond(error_response(r.status, r.reason, std::nullopt));
            } catch (const Error& e) {
                // The store (disk full, no free label): answered, never thrown off the thread.
                log(std::string("device registration: ") + e.what());
                refuse(caller, "", {}, Refused{503, "cannot register the device now"});
                respond(error_response(503, "cannot register the device now", std::nullopt));
            }
        });
    }

    json registered_device(const std::vector<std::string>& addresses, const Caller& caller) {
        std::vector<std::string> reserved;
        for (const auto& [name, client] : config.clients) reserved.push_back(name);
        Device d = devices->register_device(caller.client, clock.now(), reserved);
        json answer = device_json(d);
        answer["key_id"] = d.id;
        answer["key"] = d.key;
        if (!addresses.empty()) {
            try {
                answer["addresses"] = update_addresses(d.id, addresses).addresses;
            } catch (const Refused& r) {
                answer["address_error"] = r.reason;
            }
        }
        audit_write({clock.now(),
                     "registered",
                     caller.client,
                     caller.address,
                     "v1",
                     "",
                     {d.name},
                     "",
                     "",
                     201,
                     ""});
        return answer;
    }

    // EST (RFC 7030): cacerts; simpleenroll with a one-time enrollment token (Bearer) or the
    // request HMAC of a client allowed the label's profile; simplereenroll with the client
    // certificate being renewed, for exactly its names.
    void est(const ServerRequest& req, const EstPath& where, Respond respond) {
        Caller caller{"", "est", req.peer_address};
        std::vector<std::string> names;
        auto found = config.est_profiles.find(where.label);
        std::string profile_name = found == config.est_profiles.end() ? "" : found->second;
        try {
            if (found == config.est_profiles.end())
                throw Refused{404, "no EST CA label " + printable(where.label)};
            const ServiceProfile& profile = config.profiles.at(profile_name);
            const ServiceIssuer& issuer = config.issuers.at(profile.issuer);
            if (where.operation == "cacerts") {
                if (req.method != "GET") throw Refused{405, "use GET"};
                std::vector<Certificate> certs;
                if (std::filesystem::exists(issuer.ca_dir / "intermediate.crt"))
                    certs.push_back(Certificate::load(issuer.ca_dir / "intermediate.crt"));
                certs.push_back(Certificate::load(issuer.ca_dir / "root.crt"));
                return respond(ServerResponse{200,
                                              {{"Content-Type", std::string(kEstCertsOnlyCaCerts)},
                                               {"Content-Transfer-Encoding", "base64"}},
                                              est_certs_only(certs)});
            }
            if (where.operation != "simpleenroll" && where.operation != "simplereenroll")
                throw Refused{501, "EST " + where.operation + " is not offered"};
            if (req.method != "POST") throw Refused{405, "use POST"};
            std::optional<CertificateRequest> csr;
            try {
                csr.emplace(parse_est_csr(req.body));
            } catch (const Error& e) {
                throw Refused{400, e.what()};
            }
            if (where.operation == "simplereenroll") {
                if (req.peer_chain.empty())
                    throw Refused{401, "simplereenroll needs the current client certificate"};
                const Certificate& leaf = req.peer_chain.front();
                caller.client =
                    "certificate " + printable(leaf.common_name()) + " serial " + leaf.serial_hex();
                if (leaf.not_after() < clock.now())
                    throw Refused{401, "the client certificate has expired"};
                if (auto problem = reenroll_problem(*csr, leaf)) throw Refused{403, *problem};
            } else {
                auto bearer = req.header("authorization");
                if (bearer && bearer->starts_with("Bearer ")) {
                    caller.client = "enrollment token";
                    if (!redeem_enrollment_token(*store, std::string(bearer->substr(7)),
                                                 clock.now()))
                        throw Refused{401, "unknown, used or expired enrollment token"};
                } else {
                    Principal who = authenticate(req);
                    caller.client = who.name;
                    if (!who.client) throw Refused{403, "simpleenroll: a client or a token"};
                    const auto& allowed = who.client->profiles;
                    if (std::find(allowed.begin(), allowed.end(), profile.name) == allowed.end())
                        throw Refused{
                            403, "client " + who.name + " may not use profile " + profile.name};
                }
            }
            Asked asked = asked_from(std::move(*csr));
            names = asked.names;
            SignJob job = job_for(asked, profile);
            issue(std::move(job), asked, caller, [respond](const SignOutcome& outcome, bool) {
                if (outcome.status != 200)
                    return respond(ServerResponse{
                        outcome.status, {{"Content-Type", "text/plain"}}, outcome.reason + "\n"});
                respond(ServerResponse{200,
                                       {{"Content-Type", std::string(kEstPkcs7CertsOnly)},
                                        {"Content-Transfer-Encoding", "base64"}},
                                       est_certs_only({outcome.chain.front()})});
            });
        } catch (const Refused& r) {
            refuse(caller, profile_name, names, r);
            ServerResponse response{r.status, {{"Content-Type", "text/plain"}}, r.reason + "\n"};
            if (r.status == 401) response.headers.emplace_back("WWW-Authenticate", "Bearer");
            respond(std::move(response));
        }
    }

    void handle(const ServiceListener& listener, ServerRequest req, Respond respond) {
        std::string_view path = req.path();
        // The CA's answers are not ours to spend on one address; http-01 validation requests
        // come from the CA itself and are cheap.
        if (!path.starts_with("/.well-known/acme-challenge/"))
            if (auto wait = per_address.admit(req.peer_address, clock.now())) {
                refuse({"", "limit", req.peer_address}, "", {},
                       Refused{429, "too many requests from this address"});
                return respond(error_response(429, "too many requests from this address", *wait));
            }
        if (path == "/sign" && listener.serve.count(Endpoint::Sign))
            return sign(req, std::move(respond));
        if (path.starts_with("/v1/") && listener.serve.count(Endpoint::V1))
            return v1(req, std::move(respond));
        if (listener.serve.count(Endpoint::Est))
            if (auto where = parse_est_path(path)) return est(req, *where, std::move(respond));
        constexpr std::string_view kChallenge = "/.well-known/acme-challenge/";
        if (path.starts_with(kChallenge) && listener.serve.count(Endpoint::AcmeChallenge) &&
            (req.method == "GET" || req.method == "HEAD"))
            if (auto answer = board->get(std::string(path.substr(kChallenge.size()))))
                return respond(ServerResponse{200, {{"Content-Type", "text/plain"}}, *answer});
        respond(ServerResponse{404, {{"Content-Type", "text/plain"}}, "not found\n"});
    }

    ServiceConfig config;
    Clock& clock;
    LogLine log;
    std::stop_source stop;  // ends solvers' waits when the service stops
    ManualGate gate;        // manual dns-01: resumed by nobody yet (no control endpoint)
    std::shared_ptr<ChallengeBoard> board = std::make_shared<ChallengeBoard>();
    std::unique_ptr<ServiceStore> store;
    AuditLog audit;
    ReplayGuard replay;
    std::optional<SecretSealer> sealer;  // with devices: seals their keys in the store
    std::optional<DeviceRegistry> devices;
    RequestLimiter per_address{config.requests_per_minute_per_address};
    RequestLimiter per_client{config.requests_per_minute_per_client};
    // ACME issuers: the CA's rate limits, planned (rate_plan.hpp), kept in the store.
    struct Plan {
        std::mutex mutex;
        std::optional<RatePlanner> planner;
    };
    std::map<std::string, std::unique_ptr<Plan>> plans;
    // Work that may block (DNS updates, durable writes of registrations) off the HTTP threads.
    void in_background(std::function<void()> task) { background.submit(std::move(task)); }
    WorkQueue<std::function<void()>> background{
        2, 1, [](std::vector<std::function<void()>>& tasks, std::stop_token) {
            for (auto& t : tasks) t();
        }};
    // Last: destroyed first, answering what they still hold while the rest is alive.
    std::map<std::string, std::unique_ptr<Signer>> signers;
    ~Impl() {
        stop.request_stop();
        signers.clear();
    }
};

IssuingService::IssuingService(const ServiceConfig& config, Clock& clock, LogLine log)
    : impl_(std::make_unique<Impl>(config, clock, std::move(log))) {}

IssuingService::~IssuingService() = default;

HttpHandler IssuingService::handler(const ServiceListener& listener) {
    Impl* impl = impl_.get();
    return [impl, listener](ServerRequest req, Respond respond) {
        impl->handle(listener, std::move(req), std::move(respond));
    };
}

}  // namespace brokertls
