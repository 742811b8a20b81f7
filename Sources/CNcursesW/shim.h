#define _XOPEN_SOURCE_EXTENDED 1
#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <ncursesw/curses.h>

/* The mouse masks are macros of macros, which Swift does not import. */
static const mmask_t lrtop_mouse_click = BUTTON1_PRESSED | BUTTON1_CLICKED;
static const mmask_t lrtop_mouse_wheel_up = BUTTON4_PRESSED;
static const mmask_t lrtop_mouse_wheel_down = BUTTON5_PRESSED;
