// Values of the engine's configuration as an operator writes them (nginx directives and
// portalctl options share these rules and their messages).
#pragma once

#include <string>
#include <string_view>

#include "engine.h"

namespace portal::acme {

// "ecdsa-p256", "rsa-2048", "rsa-3072", "rsa-4096".
bool parse_key_type_spec(std::string_view text, KeyType* type, int* bits);
constexpr const char* kKeyTypeSpecs = "ecdsa-p256, rsa-2048, rsa-3072 or rsa-4096";

// The external account binding's HMAC key: a file holding it base64url-encoded (as CAs hand
// it out). Throws std::runtime_error naming the file, never its content.
std::string read_eab_key(const std::string& file);

// Everything the engine would refuse, checked without opening any store or network: key
// type, DNS pre-check settings (resolver, edge addresses, a target or addresses at all),
// directory URL scheme, readable CA file. Throws std::invalid_argument with the reason.
void check_config(const EngineConfig& config);

}  // namespace portal::acme
