#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// True when `path` exists (file, folder, anything stat can see).
func pathExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0
}

/// True when `path` is a folder (following symlinks).
func directoryExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}
