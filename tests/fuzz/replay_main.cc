// Replays a libFuzzer seed corpus without libFuzzer: calls LLVMFuzzerTestOneInput on every
// regular file of a directory (sorted, so runs are reproducible). Linked with each
// *_fuzz.cc so that ordinary ctest runs the corpora as regression tests under the
// sanitizers. Exits non-zero when the directory is missing, unreadable or empty, so a
// corpus that silently disappears fails the build.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-directory>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    std::fprintf(stderr, "%s: corpus directory %s is missing\n", argv[0], dir.c_str());
    return 1;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  if (ec) {
    std::fprintf(stderr, "%s: cannot list %s: %s\n", argv[0], dir.c_str(), ec.message().c_str());
    return 1;
  }
  std::sort(files.begin(), files.end());
  size_t ran = 0;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot read %s\n", argv[0], path.c_str());
      return 1;
    }
    // An exact-size heap copy, so the sanitizers catch any read past the input.
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    const auto copy = std::make_unique<uint8_t[]>(bytes.size());
    std::copy(bytes.begin(), bytes.end(), copy.get());
    LLVMFuzzerTestOneInput(copy.get(), bytes.size());
    ++ran;
  }
  std::printf("ran %zu inputs from %s\n", ran, dir.c_str());
  if (ran == 0) {
    std::fprintf(stderr, "%s: corpus directory %s is empty\n", argv[0], dir.c_str());
    return 1;
  }
  return 0;
}
