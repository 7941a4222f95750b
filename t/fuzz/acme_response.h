// The fuzz input of the ACME targets: HTTP responses as text, separated by a line "--":
//   STATUS            (a number; 200 when the first line is not one)
//   name: value       (headers, names taken lower-case as the transport gives them)
//   <empty line>
//   body
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "acme/http.h"

inline std::vector<portal::acme::HttpResponse> parse_responses(std::string_view in) {
  std::vector<portal::acme::HttpResponse> out;
  for (;;) {
    size_t sep = in.find("\n--\n");
    std::string_view part = in.substr(0, sep);
    portal::acme::HttpResponse res;
    res.status = 200;
    size_t eol = part.find('\n');
    std::string_view first = part.substr(0, eol);
    if (!first.empty() && first.size() <= 3 &&
        first.find_first_not_of("0123456789") == std::string_view::npos) {
      res.status = std::stol(std::string(first));
      part = eol == std::string_view::npos ? std::string_view() : part.substr(eol + 1);
      while (!part.empty()) {
        eol = part.find('\n');
        std::string_view line = part.substr(0, eol);
        part = eol == std::string_view::npos ? std::string_view() : part.substr(eol + 1);
        if (line.empty()) break;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string name(line.substr(0, colon));
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
          value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r'))
          value.remove_suffix(1);
        res.headers.emplace(std::move(name), std::string(value));
      }
    }
    res.body.assign(part);
    out.push_back(std::move(res));
    if (sep == std::string_view::npos) break;
    in.remove_prefix(sep + 4);
  }
  return out;
}
