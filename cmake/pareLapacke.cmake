# Finds LAPACKE, LAPACK and CBLAS as the INTERFACE IMPORTED target pare::lapacke (included by pare's CMakeLists.txt and by the installed pareConfig.cmake).
#
# pare::linalg links pare::lapacke. Both pare's build and every consumer of the installed
# package look the libraries up on their own machine with this file, so the exported targets
# name pare::lapacke and never carry an absolute library path.
#
# Sets PARE_LAPACKE_FOUND (TRUE/FALSE) and, when FALSE, PARE_LAPACKE_MISSING (what is missing).
# It never fails by itself: the caller decides (pare's build stops, the package reports the
# linalg component as not found). Cache variables to point it elsewhere: PARE_LAPACKE_INCLUDE_DIR
# (lapacke.h), PARE_CBLAS_INCLUDE_DIR (cblas.h), PARE_LAPACKE_LIBRARY (liblapacke, or a library
# that bundles LAPACKE such as some OpenBLAS builds); LAPACK itself comes from FindLAPACK
# (BLA_VENDOR picks the implementation; CBLAS is expected in its BLAS, as in OpenBLAS).
if(TARGET pare::lapacke)
  set(PARE_LAPACKE_FOUND TRUE)
  return()
endif()

set(PARE_LAPACKE_FOUND FALSE)
set(PARE_LAPACKE_MISSING "")
if(NOT LAPACK_FOUND)
  find_package(LAPACK QUIET)
endif()
find_path(PARE_LAPACKE_INCLUDE_DIR lapacke.h PATH_SUFFIXES lapacke openblas)
find_path(PARE_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
find_library(PARE_LAPACKE_LIBRARY NAMES lapacke)
mark_as_advanced(PARE_LAPACKE_INCLUDE_DIR PARE_CBLAS_INCLUDE_DIR PARE_LAPACKE_LIBRARY)

if(NOT LAPACK_FOUND)
  list(APPEND PARE_LAPACKE_MISSING "LAPACK (FindLAPACK)")
endif()
if(NOT PARE_LAPACKE_INCLUDE_DIR)
  list(APPEND PARE_LAPACKE_MISSING "lapacke.h")
endif()
if(NOT PARE_CBLAS_INCLUDE_DIR)
  list(APPEND PARE_LAPACKE_MISSING "cblas.h")
endif()
if(NOT PARE_LAPACKE_LIBRARY)
  list(APPEND PARE_LAPACKE_MISSING "liblapacke")
endif()
if(PARE_LAPACKE_MISSING)
  string(REPLACE ";" ", " PARE_LAPACKE_MISSING "${PARE_LAPACKE_MISSING}")
  return()
endif()

# pare's own build sets _pare_lapacke_global to GLOBAL (a project that vendors pare links pare::linalg
# from directories above pare's); in a consumer's find_package it has the usual directory scope.
add_library(pare::lapacke INTERFACE IMPORTED ${_pare_lapacke_global})
set_target_properties(pare::lapacke PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${PARE_LAPACKE_INCLUDE_DIR};${PARE_CBLAS_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "${PARE_LAPACKE_LIBRARY};${LAPACK_LIBRARIES}")
set(PARE_LAPACKE_FOUND TRUE)
