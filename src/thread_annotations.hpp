// Clang's thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html):
// what each lock guards, said where the compiler checks it. clang++ with -Wthread-safety
// proves every access to a PC_GUARDED_BY member happens with its lock held (a CTest compiles
// the annotated files so); other compilers see nothing.
#pragma once

#if defined(__clang__)
#define PC_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define PC_THREAD_ANNOTATION(x)
#endif

// A type that is a lock.
#define PC_CAPABILITY(name) PC_THREAD_ANNOTATION(capability(name))
// A type whose object holds a lock from its construction to its destruction (a guard).
#define PC_SCOPED_CAPABILITY PC_THREAD_ANNOTATION(scoped_lockable)
// A member read or written only with `lock` held.
#define PC_GUARDED_BY(lock) PC_THREAD_ANNOTATION(guarded_by(lock))
// A function called only with the locks held.
#define PC_REQUIRES(...) PC_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// A function that takes / gives back the lock (of `this`, or the ones named).
#define PC_ACQUIRE(...) PC_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define PC_RELEASE(...) PC_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// A function called only without the locks held (it takes them itself).
#define PC_EXCLUDES(...) PC_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
