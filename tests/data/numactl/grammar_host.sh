for s in '' '0' '1' '0-1' '1-0' '0x1' '01' '010' '!0' '!1' '!0-1' '+0' '+1' '+2' '+0-1' 'all' '!all' '0,all' 'all,0' '0,' ',0' '0,,1' ' 1' '1 ' '-1' '0-' '0--1' '+-1' '0x' '1,0' '0-0x1' 'abc' '2' '0-2' '!' '+' '!+0' '+!0'; do
  out=$(numactl -C "$s" numactl --show 2>/dev/null | grep -E '^physcpubind|is invalid' | head -1)
  printf '%s\t%s\n' "C[$s]" "$out"
done
for s in '' '0' '1' '0-1' '1-0' '0x0' '00' '!0' '+0' '+1' 'all' '!all' '0,all' 'all,0' '0,' ' 0' '0 ' '-0' '0x' 'netdev:lo' 'x' '0-0' '!+0'; do
  out=$(numactl -i "$s" numactl --show 2>/dev/null | grep -E '^policy|^interleavemask|is invalid' | tr '\n' '|')
  printf '%s\t%s\n' "i[$s]" "$out"
done
