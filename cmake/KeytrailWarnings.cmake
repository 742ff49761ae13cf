# Warnings every target is built with (STYLE.md section 10).
add_compile_options(-Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes
  -Wmissing-prototypes -Wpointer-arith -Wvla)
if(KT_WERROR)
  add_compile_options(-Werror)
endif()
