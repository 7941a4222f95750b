#include "http.h"

#include <cctype>

namespace portal::acme {

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::vector<std::string> HttpResponse::headers_named(const std::string& name) const {
  std::vector<std::string> out;
  auto range = headers.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

// Link: <url>;rel="alternate", <url2>; rel=up  (several per header, or several headers).
std::vector<std::string> link_targets(const HttpResponse& res, const std::string& rel) {
  std::vector<std::string> out;
  for (const std::string& value : res.headers_named("link")) {
    size_t pos = 0;
    while ((pos = value.find('<', pos)) != std::string::npos) {
      size_t end = value.find('>', pos);
      if (end == std::string::npos) break;
      std::string target = value.substr(pos + 1, end - pos - 1);
      size_t next = value.find('<', end);
      std::string params = lower(value.substr(end + 1, next == std::string::npos
                                                            ? std::string::npos
                                                            : next - end - 1));
      size_t r = params.find("rel=");
      if (r != std::string::npos) {
        std::string v = params.substr(r + 4);
        if (!v.empty() && v[0] == '"') v = v.substr(1, v.find('"', 1) - 1);
        else v = v.substr(0, v.find_first_of(";, "));
        // rel may list several types: rel="index alternate"
        size_t at = 0;
        while (at < v.size()) {
          size_t sp = v.find(' ', at);
          if (v.substr(at, sp == std::string::npos ? std::string::npos : sp - at) == rel) {
            out.push_back(target);
            break;
          }
          if (sp == std::string::npos) break;
          at = sp + 1;
        }
      }
      pos = end + 1;
    }
  }
  return out;
}

}  // namespace portal::acme
