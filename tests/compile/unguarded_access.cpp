// Must NOT compile under clang++ -Wthread-safety -Werror (tests/CMakeLists.txt checks the
// message): a member guarded by a SpinLock written without it. Proves the annotations are
// checked, not decoration.
#include "cache/near/spin_lock.hpp"

struct Shard {
  promptcache::cache::near::SpinLock mutex;
  int entries PC_GUARDED_BY(mutex) = 0;
};

int main() {
  Shard shard;
  shard.entries = 1;
  return shard.entries;
}
