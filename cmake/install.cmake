# Install rules (included from the top-level CMakeLists.txt).
#
#   cmake --install BUILD [--prefix PREFIX]      (DESTDIR=... honoured)
#
# installs, with GNUInstallDirs' directories:
#   PREFIX/bin/cairn, PREFIX/bin/cairnctl
#   PREFIX/share/man/man1/cairn.1, cairnctl.1
#   PREFIX/lib/systemd/system/cairn.service, cairn@.service   (CAIRN_SYSTEMD_UNITDIR)
#   SYSCONFDIR/cairn/cairn.conf   (example config; an existing one is kept)
# where SYSCONFDIR follows GNUInstallDirs: /etc for the prefixes /usr and /,
# /etc/opt/X for /opt/X, PREFIX/etc otherwise.
#
# The units name the installed binary and config (ExecStart=BINDIR/cairn
# --config SYSCONFDIR/cairn/cairn.conf), which depend on the prefix, and
# `cmake --install --prefix` may change the prefix after configuration: so
# they are generated at install time (string(CONFIGURE) on
# scripts/systemd/*.service.in, the way configure_file would at configure
# time), from the prefix the install really uses.
include(GNUInstallDirs)

set(CAIRN_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "systemd system unit directory: relative to the install prefix, or absolute")

install(TARGETS cairn cairnctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/cairn.1 ${PROJECT_SOURCE_DIR}/docs/man/cairnctl.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# Configure-time values the install-time code below needs.
install(CODE "
set(CAIRN_SYSTEMD_SRC \"${PROJECT_SOURCE_DIR}/scripts/systemd\")
set(CAIRN_SYSTEMD_WORK \"${PROJECT_BINARY_DIR}/systemd\")
set(CAIRN_BINDIR_REL \"${CMAKE_INSTALL_BINDIR}\")
set(CAIRN_SYSCONFDIR_REL \"${CMAKE_INSTALL_SYSCONFDIR}\")
set(CAIRN_UNITDIR_REL \"${CAIRN_SYSTEMD_UNITDIR}\")
")

install(CODE [[
# An install directory as an absolute path under the prefix of this install.
# `special` (SYSCONFDIR) applies GNUInstallDirs' exceptions
# (GNUInstallDirs_get_absolute_install_dir): /usr and / -> /etc,
# /opt/X -> /etc/opt/X.
function(cairn_install_dir out rel special)
  string(REGEX REPLACE "/+$" "" prefix "${CMAKE_INSTALL_PREFIX}")
  if(IS_ABSOLUTE "${rel}")
    set(dir "${rel}")
  elseif(special AND (prefix STREQUAL "" OR prefix STREQUAL "/usr"))
    set(dir "/${rel}")
  elseif(special AND prefix MATCHES "^/opt/" AND NOT prefix MATCHES "^/opt/homebrew/")
    set(dir "/${rel}${prefix}")
  else()
    set(dir "${prefix}/${rel}")
  endif()
  set(${out} "${dir}" PARENT_SCOPE)
endfunction()

cairn_install_dir(CAIRN_BINDIR "${CAIRN_BINDIR_REL}" OFF)
cairn_install_dir(CAIRN_SYSCONFDIR "${CAIRN_SYSCONFDIR_REL}" ON)
cairn_install_dir(CAIRN_UNITDIR "${CAIRN_UNITDIR_REL}" OFF)
set(CAIRN_CONF "${CAIRN_SYSCONFDIR}/cairn/cairn.conf")

file(MAKE_DIRECTORY "${CAIRN_SYSTEMD_WORK}")
foreach(unit cairn.service cairn@.service)
  file(READ "${CAIRN_SYSTEMD_SRC}/${unit}.in" text)
  string(CONFIGURE "${text}" text @ONLY)
  file(WRITE "${CAIRN_SYSTEMD_WORK}/${unit}" "${text}")
endforeach()
file(INSTALL DESTINATION "${CAIRN_UNITDIR}" TYPE FILE
     FILES "${CAIRN_SYSTEMD_WORK}/cairn.service" "${CAIRN_SYSTEMD_WORK}/cairn@.service")

# The example config, unless the administrator already has one.
if(EXISTS "$ENV{DESTDIR}${CAIRN_CONF}")
  message(STATUS "Kept: $ENV{DESTDIR}${CAIRN_CONF} (the example is ${CAIRN_SYSTEMD_SRC}/cairn.conf)")
else()
  file(INSTALL DESTINATION "${CAIRN_SYSCONFDIR}/cairn" TYPE FILE
       FILES "${CAIRN_SYSTEMD_SRC}/cairn.conf")
endif()
]])
