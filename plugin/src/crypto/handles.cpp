#include "brokertls/crypto/handles.hpp"

#include <climits>

#include "brokertls/error.hpp"

namespace brokertls {

BioPtr memory_bio(std::string_view data) {
    if (data.size() > INT_MAX) throw Error(ErrorKind::Input, "input larger than 2 GiB");
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    if (!bio) throw std::bad_alloc();
    return bio;
}

BioPtr memory_bio() {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio) throw std::bad_alloc();
    return bio;
}

std::string bio_contents(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

bool looks_like_pem(std::string_view data) {
    return data.find("-----BEGIN ") != std::string_view::npos;
}

}  // namespace brokertls
